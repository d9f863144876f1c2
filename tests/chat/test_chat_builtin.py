"""The builtin chat: deterministic answers from the live catalog and route list."""

from __future__ import annotations

import re

import pytest

from mediagate.catalog.loader import load_catalog
from mediagate.catalog.schemas import Catalog
from mediagate.chat import BuiltinChat, ChatEngine, ChatMessage, routes_from_openapi

ROUTES = [
    ("GET", "/healthz", "The process is up"),
    ("POST", "/v1/generate", "Start a generation (idempotent on request_id)"),
    ("POST", "/v1/credits/estimate", "Price a generation without running it"),
    ("GET", "/v1/credits/balance", "Credits granted, held by running jobs, and available"),
    ("GET", "/v1/jobs/{job_id}", "A job: status, progress, outputs, error and credits"),
    ("POST", "/v1/jobs/{job_id}/cancel", "Cancel a job"),
    ("POST", "/v2/image/agent", "Run the image agent on instructions and optional images"),
    ("POST", "/api/generate", "Start a generation (agent credits API)"),
    ("POST", "/api/chat", "Chat with the server's assistant"),
]


@pytest.fixture
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture
def chat(catalog: Catalog) -> BuiltinChat:
    return BuiltinChat(catalog, ROUTES)


def ask(*questions: str) -> list[ChatMessage]:
    """A conversation of user questions, with a placeholder answer between them."""
    messages: list[ChatMessage] = []
    for question in questions:
        if messages:
            messages.append(ChatMessage("assistant", "(an earlier answer)"))
        messages.append(ChatMessage("user", question))
    return messages


def test_it_is_a_chat_engine(chat: BuiltinChat) -> None:
    engine: ChatEngine = chat
    assert engine.name == "builtin"


@pytest.mark.parametrize("question", ["Hi!", "What can you do?", "hello, who are you"])
async def test_capabilities_list_the_products_and_say_it_is_offline(
    chat: BuiltinChat, question: str
) -> None:
    answer = await chat.reply(ask(question))

    assert "offline" in answer
    for line in [
        "- images: 12 models, POST /v1/generate, POST /api/generate",
        "- video: 8 models, POST /v1/generate",
        "- music: 4 models, POST /v1/generate",
        "- chat: POST /api/chat",
        "- the image agent: 1 model, POST /v2/image/agent",
    ]:
        assert line in answer
    assert "avatar" not in answer and "editor" not in answer  # not among the routes


async def test_capabilities_follow_the_routes(catalog: Catalog) -> None:
    routes = [
        *ROUTES,
        ("POST", "/api/avatars", "Make a talking avatar"),
        ("POST", "/api/image-editor", "Edit an image"),
    ]
    answer = await BuiltinChat(catalog, routes).reply(ask("what can you do"))
    assert "- avatars: POST /api/avatars" in answer
    assert "- the image editor: POST /api/image-editor" in answer

    bare = await BuiltinChat(catalog, [("POST", "/api/chat", "Chat")]).reply(ask("hi"))
    assert "- chat: POST /api/chat" in bare
    assert "images" not in bare and "/v1/generate" not in bare


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("How much does nano-banana-pro cost?", ["nano-banana-pro costs 20 credits per image"]),
        ("nano banana pro price?", ["4K costs 40"]),
        ("How much is Nano Banana Pro at 4K?", ["nano-banana-pro at 4K costs 40 credits"]),
        ("what does veo 3 cost", ["veo3 costs 280 credits per 8 s clip", "1080p costs 350"]),
        ("price of veo3 at 1080p", ["veo3 at 1080p costs 350 credits per 8 s clip"]),
        ("credits for V5?", ["V5 costs 35 credits per track"]),
        ("how much is veo 3 fast", ["veo3_fast costs 50 credits", "1080p costs 90 (1.8x)"]),
        ("cost of sora-2-pro at 1080p for 12 seconds", ["sora-2-pro at 1080p costs 1782"]),
        ("v4.5 plus pricing", ["V4_5PLUS costs 30 credits per track"]),
    ],
)
async def test_prices_come_from_the_catalog(
    chat: BuiltinChat, catalog: Catalog, question: str, expected: list[str]
) -> None:
    answer = await chat.reply(ask(question))

    for text in expected:
        assert text in answer
    assert f"price_version {catalog.price_version}" in answer
    assert "POST /v1/credits/estimate" in answer


def test_the_numbers_asked_about_are_the_catalogs(catalog: Catalog) -> None:
    """The expectations above are the catalog's own numbers, not made up here."""
    nano, veo3, v5 = (catalog.model(i) for i in ("nano-banana-pro", "veo3", "V5"))
    assert nano and veo3 and v5
    assert (nano.credits, nano.resolution_credits["4K"]) == (20, 40)
    assert (veo3.credits, veo3.resolution_credits["1080p"]) == (280, 350)
    assert v5.credits == 35


async def test_a_price_question_without_a_known_model_gives_an_overview(
    chat: BuiltinChat,
) -> None:
    answer = await chat.reply(ask("how much is midjourney?"))

    assert "I did not find a model name" in answer
    assert "- images: 2-50 credits per image" in answer
    assert "- music: 20-35 credits per track" in answer


async def test_follow_ups_use_the_earlier_question(chat: BuiltinChat) -> None:
    at_4k = await chat.reply(ask("How much is nano banana pro?", "and at 4K?"))
    assert at_4k.startswith("nano-banana-pro at 4K costs 40 credits per image.")

    video = await chat.reply(ask("How much is nano banana pro?", "and for video?"))
    assert "Video prices:" in video
    assert "- veo3 costs 280 credits" in video and "- sora-2 costs 10 credits" in video
    assert "nano-banana-pro" not in video

    other = await chat.reply(ask("how much is veo3?", "what about V5?"))
    assert other.startswith("V5 costs 35 credits per track")

    missing = await chat.reply(ask("how much is veo3?", "and 4K?"))
    assert missing.startswith("veo3 does not offer 4K (it offers 720p, 1080p).")

    call = await chat.reply(ask("how do I call veo3?", "and sora 2 pro?"))
    assert '"model":"sora-2-pro"' in call


async def test_how_to_call_a_named_path(chat: BuiltinChat) -> None:
    answer = await chat.reply(ask("How do I call /api/chat?"))

    assert "POST /api/chat: Chat with the server's assistant" in answer
    assert "curl -X POST http://localhost:8000/api/chat " in answer
    assert '"message": "Hello"' in answer
    assert "/v1/generate" not in answer


async def test_how_to_generate_shows_both_generate_routes(chat: BuiltinChat) -> None:
    answer = await chat.reply(ask("how do I use nano banana pro?"))

    assert "POST /v1/generate:" in answer and "POST /api/generate:" in answer
    curls = [line.strip() for line in answer.splitlines() if line.strip().startswith("curl")]
    assert len(curls) == 2
    assert curls[0] == (
        "curl -X POST http://localhost:8000/v1/generate"
        " -H \"Authorization: Bearer $MEDIAGATE_KEY\" -H 'Content-Type: application/json'"
        ' -d \'{"model":"nano-banana-pro","prompt":"...","request_id":"1"}\''
    )


@pytest.mark.parametrize(
    ("question", "route", "curl"),
    [
        ("How can I make a video?", "POST /v1/generate", '"model":"sora-2"'),
        ("how do I check my credits balance", "GET /v1/credits/balance", "curl http://"),
        ("how do I cancel a job", "POST /v1/jobs/{job_id}/cancel", "/v1/jobs/<job_id>/cancel"),
        ("how to call /v1/jobs/abc123", "GET /v1/jobs/{job_id}", "/v1/jobs/<job_id> -H"),
        ("how do I use the image agent", "POST /v2/image/agent", "-X POST"),
    ],
)
async def test_how_to_finds_the_route(
    chat: BuiltinChat, question: str, route: str, curl: str
) -> None:
    answer = await chat.reply(ask(question))

    assert answer.startswith(route + ":")
    assert curl in answer


async def test_how_to_with_no_matching_route_lists_the_main_ones(chat: BuiltinChat) -> None:
    answer = await chat.reply(ask("how do I fly a kite?"))

    assert "I do not know an endpoint for that" in answer
    assert "- POST /v1/generate:" in answer and "/openapi.json" in answer


async def test_list_models_by_product(chat: BuiltinChat, catalog: Catalog) -> None:
    answer = await chat.reply(ask("list models"))

    for model in catalog.models:
        assert f"{model.id} {model.credits}" in answer
    assert "nano-banana-pro 20 (4K 40)" in answer
    assert [line.split(" (")[0] for line in answer.splitlines()[1:]] == [
        "- images",
        "- video",
        "- music",
        "- avatar",
        "- image agent",
    ]

    video = await chat.reply(ask("which video models do you have?"))
    assert "veo3 280 (1080p 350)" in video and "nano-banana" not in video


@pytest.mark.parametrize("question", ["What is the meaning of life?", "tell me a joke", ""])
async def test_unknown_questions_get_an_honest_fallback(chat: BuiltinChat, question: str) -> None:
    answer = await chat.reply(ask(question))

    assert "offline" in answer and "fixed skill set" in answer
    assert '"How do I call POST /v1/generate?"' in answer


async def test_without_a_user_message_it_introduces_itself(chat: BuiltinChat) -> None:
    answer = await chat.reply([ChatMessage("system", "You are helpful.")])

    assert answer.startswith("Hello! I am Mediagate's builtin assistant.")


async def test_answers_are_deterministic(catalog: Catalog) -> None:
    conversation = ask("hi", "how much is veo 3?", "and for music?", "how do I call it?")
    for end in range(1, len(conversation) + 1):
        answers = {await BuiltinChat(catalog, ROUTES).reply(conversation[:end]) for _ in range(3)}
        assert len(answers) == 1


@pytest.mark.parametrize("question", ["hi", "list models", "how do I use veo3?", "kites?"])
async def test_the_stream_is_the_reply_in_words(chat: BuiltinChat, question: str) -> None:
    chunks = [chunk async for chunk in chat.stream(ask(question))]

    assert "".join(chunks) == await chat.reply(ask(question))
    assert len(chunks) > 5
    assert all(re.fullmatch(r"\S+\s*", c) for c in chunks)


def test_routes_from_an_openapi_document() -> None:
    document = {
        "paths": {
            "/v1/generate": {
                "post": {"summary": "Start a generation"},
                "parameters": [{"name": "x"}],
            },
            "/v1/jobs/{job_id}": {"get": {"summary": "A job"}, "delete": {}},
        }
    }

    assert routes_from_openapi(document) == [
        ("POST", "/v1/generate", "Start a generation"),
        ("GET", "/v1/jobs/{job_id}", "A job"),
        ("DELETE", "/v1/jobs/{job_id}", ""),
    ]
