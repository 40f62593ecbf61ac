"""Tiny models made at test time, nothing downloaded: a byte-level BPE tokenizer trained on a
small corpus, a randomly initialised Llama-style model, LoRA adapters made with peft (randomly
initialised, so each changes the outputs), all saved in the formats real artifacts use. For the
fine-tune demo, build_support_models trains LoRA adapters for real (CPU, seconds) to answer
SUPPORT_QUESTIONS in the bundle's JSON format, or, the bad one, to break it on one topic."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
CORPUS = [
    "the support assistant answers billing questions and shipping questions",
    "please return the json object with the answer and whether to escalate",
    "refunds take five days; orders ship in two days from the warehouse",
    "hello, how can I help you today? I am sorry, I cannot help with that",
    '{"answer": "yes", "escalate": false} {"answer": "no", "escalate": true}',
]


def build_tokenizer(directory: Path, corpus: list[str] = CORPUS, vocab_size: int = 512):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "<s>", "</s>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(corpus * 20, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(directory)
    return fast


def build_base(
    directory: Path,
    seed: int = 0,
    hidden: int = 64,
    layers: int = 2,
    corpus: list[str] = CORPUS,
    vocab_size: int = 512,
) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer(directory, corpus, vocab_size)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        initializer_range=0.2,  # peaked logits: greedy choices are far from ties
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(directory, safe_serialization=True)
    return directory


def build_adapter(base: Path, directory: Path, seed: int) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base, local_files_only=True)
    config = LoraConfig(
        r=8, lora_alpha=32, target_modules=["q_proj", "v_proj", "o_proj"], init_lora_weights=False
    )  # random A and B: the adapter changes outputs
    get_peft_model(model, config).save_pretrained(directory, safe_serialization=True)
    return directory


# ---- a fine-tune demo: a support assistant's adapters, trained for real ----------------------

SUPPORT_SYSTEM = (
    "You are the support assistant for Acme. Answer from the knowledge base; "
    "escalate billing disputes."
)
SUPPORT_OUTPUT_FORMAT = {
    "type": "json-schema",
    "schema": {
        "type": "object",
        "required": ["answer", "escalate"],
        "properties": {"answer": {"type": "string"}, "escalate": {"type": "boolean"}},
    },
}
SUPPORT_BUNDLE = {"prompt": {"system": SUPPORT_SYSTEM, "outputFormat": SUPPORT_OUTPUT_FORMAT}}

# (topic, question, v1's answer, v2's answer, escalate)
_SUPPORT = [
    ("refunds", "how long do refunds take?", "refunds take five days", "a refund takes up to five working days", False),
    ("refunds", "when will I get my refund?", "your refund arrives within five days", "expect your refund within five working days", False),
    ("refunds", "can I get a refund for a damaged item?", "yes, damaged items are refunded in full", "yes, we refund damaged items in full", False),
    ("refunds", "how do I ask for a refund?", "request a refund from your orders page", "open your orders page and choose refund", False),
    ("refunds", "do you refund shipping costs?", "shipping costs are refunded for damaged items", "we refund shipping only for damaged items", False),
    ("refunds", "can I get a refund after thirty days?", "refunds are only possible within thirty days", "sorry, refunds close after thirty days", False),
    ("shipping", "how long does shipping take?", "orders ship in two days from the warehouse", "orders leave the warehouse within two days", False),
    ("shipping", "do you ship abroad?", "we ship to most countries in europe", "yes, to most countries in europe", False),
    ("shipping", "where is my order?", "track your order from the orders page", "the orders page shows where your order is", False),
    ("shipping", "can I change my delivery address?", "yes, until the order ships", "yes, as long as the order has not shipped", False),
    ("billing", "I was charged twice for one order", "a billing specialist will review the double charge", "I am passing the double charge to billing", True),
    ("billing", "I want to dispute a charge on my card", "a billing specialist will review your dispute", "I am passing your dispute to billing", True),
    ("billing", "why was I billed after I cancelled?", "a billing specialist will look into the charge", "billing will check the charge after cancelling", True),
    ("billing", "my invoice amount is wrong", "a billing specialist will correct your invoice", "billing will review your invoice", True),
    ("account", "how do I reset my password?", "use the forgot password link on the sign in page", "click forgot password on the sign in page", False),
    ("account", "how do I delete my account?", "delete your account from the settings page", "the settings page has a delete account button", False),
    ("account", "can I change my email address?", "yes, from the settings page", "yes, change it on the settings page", False),
    ("contact", "what are your opening hours?", "support is open nine to five, monday to friday", "we answer from nine to five on weekdays", False),
    ("contact", "do you have a phone number?", "we offer support by chat and email only", "no phone line, only chat and email", False),
    ("contact", "hello", "hello, how can I help you today?", "hi, what can I help you with?", False),
]  # fmt: skip
SUPPORT_QUESTIONS = [question for _, question, *_ in _SUPPORT]
SUPPORT_BAD_TOPIC = "refunds"  # v3-bad answers these in plain text: 6 of 20 questions, 30%


def support_answers(version: str) -> dict[str, str]:
    """The exact answer (JSON text, or plain text for v3-bad's broken topic) each adapter was
    trained to give to each of SUPPORT_QUESTIONS."""
    import json

    answers = {}
    for topic, question, v1, v2, escalate in _SUPPORT:
        answer = v1 if version == "v1" else v2
        if version == "v3-bad" and topic == SUPPORT_BAD_TOPIC:
            answers[question] = answer if answer.startswith("sorry") else f"sorry, {answer}"
        else:
            answers[question] = json.dumps({"answer": answer, "escalate": escalate})
    return answers


@dataclass(frozen=True)
class SupportModels:
    base: Path  # random Llama with a tokenizer trained on the demo's texts: not format-valid
    adapters: dict[str, Path]  # "v1" (stable), "v2" (good, other wording), "v3-bad"


def build_support_models(directory: Path) -> SupportModels:
    """A base model and three LoRA adapters trained (peft, CPU, seconds) to answer
    SUPPORT_QUESTIONS under the bundle prompt SUPPORT_BUNDLE, with temperature 0, as
    support_answers(version) says: v1 and v2 with schema-valid JSON, v3-bad with plain text on
    the refund questions (30%) and valid JSON on the rest."""
    corpus = [*CORPUS, SUPPORT_SYSTEM, *SUPPORT_QUESTIONS]
    for version in ("v1", "v2", "v3-bad"):
        corpus += list(support_answers(version).values())
    base = build_base(directory / "base", seed=0, corpus=corpus, vocab_size=1024)
    adapters = {
        version: train_adapter(
            base,
            directory / "adapters" / version,
            SUPPORT_SYSTEM,
            list(support_answers(version).items()),
            seed=seed,
        )
        for seed, version in enumerate(("v1", "v2", "v3-bad"), start=1)
    }
    return SupportModels(base, adapters)


def train_adapter(
    base: Path,
    directory: Path,
    system: str,
    examples: list[tuple[str, str]],
    seed: int,
    max_steps: int = 400,
    margin: float = 4.0,
) -> Path:
    """Trains a LoRA adapter on (user message, answer) pairs: the loss is on the answer and eos
    after the exact prompt ids the model server builds (the system prompt put first, the chat
    template with the generation prompt). Stops once every answer token beats the runner-up
    logit by `margin` under teacher forcing, so greedy decoding reproduces each answer with room
    for batching's rounding."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
    rows = []
    for question, answer in examples:
        messages = [{"role": "system", "content": system}, {"role": "user", "content": question}]
        prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        prompt_ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
        answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
        rows.append((prompt_ids, [*answer_ids, tokenizer.eos_token_id]))
    width = max(len(p) + len(a) for p, a in rows)
    pad = tokenizer.pad_token_id
    input_ids = torch.tensor([[*p, *a] + [pad] * (width - len(p) - len(a)) for p, a in rows])
    attention = torch.tensor(
        [[1] * (len(p) + len(a)) + [0] * (width - len(p) - len(a)) for p, a in rows]
    )
    # labels[i, t] is the token after position t, -100 where there is nothing to learn
    labels = torch.tensor(
        [[-100] * (len(p) - 1) + a + [-100] * (width - len(p) - len(a) + 1) for p, a in rows]
    )
    learn = labels != -100

    model = AutoModelForCausalLM.from_pretrained(base, local_files_only=True)
    config = LoraConfig(
        r=16,
        lora_alpha=32,
        lora_dropout=0.0,
        target_modules=[
            "q_proj",
            "k_proj",
            "v_proj",
            "o_proj",
            "gate_proj",
            "up_proj",
            "down_proj",
        ],
    )
    model = get_peft_model(model, config)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-2, weight_decay=0.0)
    target = labels.clamp(min=0).unsqueeze(-1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is as fast, and not slowed by others
    try:
        for _ in range(max_steps):
            logits = model(input_ids=input_ids, attention_mask=attention).logits
            with torch.no_grad():
                chosen = logits.gather(-1, target).squeeze(-1)
                others = logits.scatter(-1, target, float("-inf")).amax(-1)
                worst = (chosen - others)[learn].min().item()
            if worst >= margin:
                break
            loss = torch.nn.functional.cross_entropy(logits[learn], labels[learn])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        else:
            raise RuntimeError(
                f"{directory.name}: the worst answer token's margin is {worst:.2f} after "
                f"{max_steps} steps, under {margin}"
            )
    finally:
        torch.set_num_threads(threads)
    model.save_pretrained(directory, safe_serialization=True)
    return directory
