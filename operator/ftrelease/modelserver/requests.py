"""The request bodies the server accepts, checked as the OpenAI API and vLLM check them: strict
types, OpenAI's ranges, and unknown or unsupported parameters refused by name with a 400 rather
than ignored. Parsed from the raw bytes by pydantic, so malformed, non-finite or absurdly
nested JSON is a 400 too. What parses here cannot make generation fail."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

MAX_N = 8  # choices per request (n x prompts)
MAX_STOPS = 16
INT64 = (-(2**63), 2**64 - 1)  # what torch.Generator.manual_seed takes


class RequestProblem(Exception):
    """A 400: `param` names the parameter, as the OpenAI API does."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message, self.param = message, param


class Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)


Probability = Annotated[float, Field(gt=0, le=1)]
Penalty = Annotated[float, Field(ge=-2, le=2)]


class StreamOptions(Body):
    include_usage: bool = False
    continuous_usage_stats: bool = False  # vLLM's; accepted, not needed


class ResponseFormat(Body):
    model_config = ConfigDict(strict=True, extra="allow")
    type: str


class Sampled(Body):
    """The parameters both endpoints share."""

    model: str
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=1.0, ge=0, le=2)
    top_p: Probability = 1.0
    n: int = Field(default=1, ge=1, le=MAX_N)
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    seed: int | None = Field(default=None, ge=INT64[0], le=INT64[1])
    presence_penalty: Penalty = 0.0
    frequency_penalty: Penalty = 0.0
    logit_bias: dict[str, Annotated[float, Field(ge=-100, le=100)]] | None = None
    user: str | None = None  # an end user's id: accepted, as OpenAI does, and not used
    ignore_eos: bool = False  # vLLM's extension: always generate max_tokens

    @field_validator("stop")
    @classmethod
    def _stops(cls, stop: str | list[str] | None) -> list[str]:
        stops = [stop] if isinstance(stop, str) else (stop or [])
        if len(stops) > MAX_STOPS:
            raise ValueError(f"at most {MAX_STOPS} stop sequences")
        if any(not s for s in stops):
            raise ValueError("a stop sequence must not be empty")
        return stops

    @field_validator("logit_bias")
    @classmethod
    def _token_ids(cls, bias: dict[str, float] | None) -> dict[str, float] | None:
        for key in bias or {}:
            if not key.isdigit():
                raise ValueError(f"keys are token ids; {key!r} is not one")
        return bias

    def bias(self) -> dict[int, float]:
        return {int(k): v for k, v in (self.logit_bias or {}).items()}


class TextPart(Body):
    type: Literal["text"]
    text: str


class Message(Body):
    model_config = ConfigDict(strict=True, extra="forbid")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[dict[str, Any]]
    name: str | None = None

    @field_validator("content")
    @classmethod
    def _parts(cls, content: str | list[dict[str, Any]]) -> str | list[dict[str, Any]]:
        if isinstance(content, list):
            for index, part in enumerate(content):
                if part.get("type") != "text":
                    raise ValueError(
                        f"part {index}: only text content parts are supported by this model, "
                        f"not {part.get('type')!r}"
                    )
                TextPart.model_validate(part)
        return content

    def text(self) -> str:
        """Text parts joined by newlines, as vLLM joins them."""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(part["text"] for part in self.content)


class ChatBody(Sampled):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    response_format: ResponseFormat | None = None

    def limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


TokenIds = list[Annotated[int, Field(ge=0)]]


class CompletionBody(Sampled):
    prompt: str | list[str] | TokenIds | list[TokenIds]
    logprobs: int | None = Field(default=None, ge=0, le=5)
    echo: bool = False
    best_of: int | None = Field(default=None, ge=1)
    suffix: str | None = None

    def limit(self) -> int | None:
        return self.max_tokens

    def prompts(self) -> list[str | list[int]]:
        prompt = self.prompt
        if isinstance(prompt, str):
            return [prompt]
        if not prompt:
            raise RequestProblem("prompt must not be empty", "prompt")
        if all(isinstance(p, int) for p in prompt):
            return [prompt]  # type: ignore[list-item]
        return list(prompt)  # type: ignore[arg-type]


def _unsupported(body: Sampled) -> None:
    """Parameters that parse but that this server does not carry out: a clear 400, never a
    silent default."""
    if isinstance(body, ChatBody):
        if body.logprobs or body.top_logprobs:
            raise RequestProblem("logprobs are not supported by the builtin runtime", "logprobs")
        kind = body.response_format.type if body.response_format else "text"
        if kind != "text":
            raise RequestProblem(
                f"response_format {kind!r} is not supported: the builtin runtime does not "
                "constrain decoding (the bundle's prompt.outputFormat is measured, not enforced)",
                "response_format",
            )
    if isinstance(body, CompletionBody):
        if body.logprobs:
            raise RequestProblem("logprobs are not supported by the builtin runtime", "logprobs")
        if body.echo or body.suffix or (body.best_of or 1) > body.n:
            raise RequestProblem(
                "echo, suffix and best_of are not supported by the builtin runtime",
                "echo" if body.echo else "suffix" if body.suffix else "best_of",
            )
    if body.stream_options and not body.stream:
        raise RequestProblem("stream_options needs stream: true", "stream_options")


def parse(raw: bytes, chat: bool) -> ChatBody | CompletionBody:
    model = ChatBody if chat else CompletionBody
    try:
        body = model.model_validate_json(raw)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        param = ".".join(str(p) for p in error["loc"]) or None
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = f"unrecognized request argument: {param}"
        elif error["type"] == "json_invalid":
            message = f"the body is not valid JSON: {error.get('ctx', {}).get('error', '')}"
            param = None
        elif param:
            message = f"{param}: {message}"
        raise RequestProblem(message, param) from None
    _unsupported(body)
    return body
