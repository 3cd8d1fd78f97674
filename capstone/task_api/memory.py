"""Conversation memory: each user's conversations with the agents, in the app's database."""

import json
import uuid
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Session, col, delete, select

from task_api.errors import ConversationNotFound
from task_api.models import Conversation, ConversationTurn, Message, utc_now

TITLE_LENGTH = 60


def new_conversation_id() -> str:
    return uuid.uuid4().hex


class ConversationStore:
    """One user's conversations. Another user's conversation is "not found", like a task."""

    def __init__(self, session: Session, owner_id: int) -> None:
        self.session = session
        self.owner_id = owner_id

    def get(self, conversation_id: str) -> Conversation:
        conversation = self.session.get(Conversation, conversation_id)
        if conversation is None or conversation.owner_id != self.owner_id:
            raise ConversationNotFound(conversation_id)
        return conversation

    def list_conversations(self, limit: int, offset: int) -> list[Conversation]:
        """Newest first: the one most recently talked in."""
        query = (
            select(Conversation)
            .where(Conversation.owner_id == self.owner_id)
            .order_by(col(Conversation.updated_at).desc(), col(Conversation.id))
            .offset(offset)
            .limit(limit)
        )
        return list(self.session.exec(query).all())

    def history(self, conversation_id: str | None) -> list[dict[str, Any]]:
        """The model input of every complete turn so far; nothing for a new conversation."""
        if conversation_id is None:
            return []
        self.get(conversation_id)  # an id we did not hand this user is "not found"
        turns = self.session.exec(
            select(ConversationTurn)
            .where(ConversationTurn.conversation_id == conversation_id)
            .order_by(col(ConversationTurn.id))
        )
        return [item for turn in turns for item in turn.items]

    def add_turn(self, conversation_id: str, message: str, items: list[Any], new: bool) -> None:
        """Add a finished turn to the conversation, or, when `new`, to a new one of that id,
        titled by its first message. In the caller's transaction (the caller commits):
        ConversationNotFound if the conversation was deleted meanwhile."""
        if new:
            title = message if len(message) <= TITLE_LENGTH else message[: TITLE_LENGTH - 1] + "…"
            conversation = Conversation(id=conversation_id, owner_id=self.owner_id, title=title)
        else:
            conversation = self.get(conversation_id)
            conversation.updated_at = utc_now()
        # Round-trip through JSON: the SDK's items may hold objects a JSON column cannot.
        plain = json.loads(json.dumps(items, default=str))
        self.session.add(conversation)
        self.session.add(ConversationTurn(conversation_id=conversation_id, items=plain))
        try:
            self.session.flush()  # the writes happen here: a deleted conversation shows now
        except (IntegrityError, StaleDataError):
            raise ConversationNotFound(conversation_id) from None

    def rename(self, conversation_id: str, title: str) -> Conversation:
        conversation = self.get(conversation_id)
        conversation.title = title
        self.session.add(conversation)
        self.session.commit()
        self.session.refresh(conversation)
        return conversation

    def delete(self, conversation_id: str) -> None:
        conversation = self.get(conversation_id)
        self.session.exec(
            delete(ConversationTurn).where(
                col(ConversationTurn.conversation_id) == conversation_id
            )
        )
        self.session.delete(conversation)
        self.session.commit()

    def messages(self, conversation_id: str) -> list[Message]:
        """What was said, by the user and by the agents, leaving out the tool calls."""
        messages = []
        for item in self.history(conversation_id):
            if item.get("role") == "user":
                messages.append(Message(role="user", content=text_of(item["content"])))
            elif item.get("type") == "message" and item.get("role") == "assistant":
                messages.append(Message(role="assistant", content=text_of(item["content"])))
        return messages


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))
