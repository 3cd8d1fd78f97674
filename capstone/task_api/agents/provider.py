"""The model the agents use, built from the settings once per process, closed at shutdown."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from agents import Model
from agents.models.openai_chatcompletions import OpenAIChatCompletionsModel
from agents.models.openai_responses import OpenAIResponsesModel
from openai import AsyncOpenAI

from course_shared.offline_model import OfflineModel
from task_api.config import Settings

# Which specialist the offline model hands each kind of request to. A real model reads the
# triage instructions and the handoff descriptions; the offline model is told, not left to
# guess (the kinds are those of course_shared.offline_model.IntentKind).
OFFLINE_ROUTES = {
    "plan": "transfer_to_planner",
    "create": "transfer_to_clerk",
    "update": "transfer_to_clerk",
    "complete": "transfer_to_clerk",
    "delete": "transfer_to_clerk",
    "list": "transfer_to_reporter",
    "show": "transfer_to_reporter",
    "summary": "transfer_to_reporter",
}


@asynccontextmanager
async def open_model(settings: Settings) -> AsyncIterator[Model]:
    """The model AGENT_MODEL names (offline, OpenAI's, or an OpenAI-compatible server's),
    for as long as the block runs: the app keeps one from start-up to shutdown.

    An OpenAI client holds a pool of connections to its provider. One per process lets every
    chat reuse them; closing it at the end lets the provider know the connections are done.
    """
    if settings.agent_model == "offline":
        yield OfflineModel(delay=settings.offline_model_delay, routes=OFFLINE_ROUTES)
        return
    api_key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    # Ollama, vLLM, LM Studio...: they need no key, but the client wants one.
    client = AsyncOpenAI(base_url=settings.openai_base_url, api_key=api_key or "unused")
    api = settings.openai_api or ("chat_completions" if settings.openai_base_url else "responses")
    model: Model
    if api == "responses":
        model = OpenAIResponsesModel(model=settings.agent_model, openai_client=client)
    else:
        model = OpenAIChatCompletionsModel(model=settings.agent_model, openai_client=client)
    async with client:
        yield model
