"""Your conversations with the agents: list them, read one, rename it, forget it."""

from typing import Annotated

from fastapi import APIRouter, Path, Query

from task_api.deps import ConversationsDep, needs
from task_api.errors import (
    ConversationNotFound,
    MissingScope,
    NotAuthenticated,
    TooManyRequests,
    responses,
)
from task_api.models import (
    CONVERSATION_ID,
    Conversation,
    ConversationPublic,
    ConversationRename,
    ConversationWithMessages,
    Scope,
)

router = APIRouter(
    prefix="/conversations",
    tags=["conversations"],
    dependencies=[needs(Scope.READ, Scope.WRITE)],
    responses=responses(NotAuthenticated, MissingScope, TooManyRequests),
)
ConversationId = Annotated[str, Path(pattern=CONVERSATION_ID)]


@router.get("", response_model=list[ConversationPublic])
def list_conversations(
    conversations: ConversationsDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[Conversation]:
    """Your conversations, the most recent first, a page at a time."""
    return conversations.list_conversations(limit=limit, offset=offset)


@router.get("/{conversation_id}", responses=responses(ConversationNotFound))
def read_conversation(
    conversation_id: ConversationId, conversations: ConversationsDep
) -> ConversationWithMessages:
    """One conversation, with what you and the agents said (the tool calls left out)."""
    conversation = conversations.get(conversation_id)
    return ConversationWithMessages(
        **ConversationPublic.model_validate(conversation, from_attributes=True).model_dump(),
        messages=conversations.messages(conversation_id),
    )


@router.patch(
    "/{conversation_id}",
    response_model=ConversationPublic,
    responses=responses(ConversationNotFound, reads_body=True),
)
def rename_conversation(
    conversation_id: ConversationId, data: ConversationRename, conversations: ConversationsDep
) -> Conversation:
    """Give a conversation another title."""
    return conversations.rename(conversation_id, data.title)


@router.delete("/{conversation_id}", status_code=204, responses=responses(ConversationNotFound))
def delete_conversation(conversation_id: ConversationId, conversations: ConversationsDep) -> None:
    """Forget a conversation and everything said in it."""
    conversations.delete(conversation_id)
