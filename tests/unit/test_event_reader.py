"""The response checker reads answers out of server-sent events however the bytes are cut."""

import json

import pytest
from ftrelease.sidecar.stream import EventReader, Parsed


def chunk(delta: dict, finish: str | None = None, **extra) -> str:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return "data: " + json.dumps({"object": "chat.completion.chunk", "choices": [choice], **extra})


EVENTS = [
    ": a comment line, passed over",
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": '{"note": "caf\u00e9'}),
    chunk({"content": '"}'}),
    chunk({}, "stop", usage={"prompt_tokens": 3, "completion_tokens": 5}),
    "data: [DONE]",
]


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_answers_are_read_the_same_wherever_the_stream_is_cut(newline):
    stream = "".join(event + newline * 2 for event in EVENTS).encode()
    for cut in range(1, len(stream)):
        parsed = Parsed()
        reader = EventReader(parsed)
        reader.feed(stream[:cut])
        reader.feed(stream[cut:])
        [answer] = parsed.answers()
        assert (answer.text, answer.finish_reason) == ('{"note": "caf\u00e9"}', "stop"), cut
        assert (parsed.prompt_tokens, parsed.tokens()) == (3, 5)


def test_without_usage_the_content_chunks_are_the_tokens():
    parsed = Parsed()
    EventReader(parsed).feed("".join(e + "\n\n" for e in EVENTS[1:4]).encode())
    assert parsed.tokens() == 2 and parsed.first_content_at is not None
