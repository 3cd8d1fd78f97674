"""Conversation memory: each user's conversations with the agent, in the app's database."""

import json
import uuid
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Session, col, delete, select

from task_api.errors import ConversationNotFound
from task_api.models import AgentSession, AgentTurn, SessionMessage, utc_now


class ConversationStore:
    """One user's conversations. Another user's conversation is "not found", like a task."""

    def __init__(self, session: Session, owner_id: int) -> None:
        self.session = session
        self.owner_id = owner_id

    def get(self, session_id: str) -> AgentSession:
        conversation = self.session.get(AgentSession, session_id)
        if conversation is None or conversation.owner_id != self.owner_id:
            raise ConversationNotFound(session_id)
        return conversation

    def history(self, session_id: str | None) -> list[dict[str, Any]]:
        """The model input of every complete turn so far; nothing for a new conversation."""
        if session_id is None:
            return []
        self.get(session_id)  # an id we did not hand this user is "not found"
        turns = self.session.exec(
            select(AgentTurn).where(AgentTurn.session_id == session_id).order_by(col(AgentTurn.id))
        )
        return [item for turn in turns for item in turn.items]

    def save_turn(self, session_id: str | None, items: list[Any]) -> str:
        """Keep a finished turn (in a new conversation when `session_id` is None); its id."""
        if session_id is None:
            conversation = AgentSession(id=uuid.uuid4().hex, owner_id=self.owner_id)
        else:
            conversation = self.get(session_id)
            conversation.updated_at = utc_now()
        # Round-trip through JSON: the SDK's items may hold objects a JSON column cannot.
        plain = json.loads(json.dumps(items, default=str))
        session_id = conversation.id
        self.session.add(conversation)
        self.session.add(AgentTurn(session_id=session_id, items=plain))
        try:
            self.session.commit()
        except (IntegrityError, StaleDataError):  # the conversation was deleted a moment ago
            self.session.rollback()
            raise ConversationNotFound(session_id) from None
        # Not `conversation.id`: after a commit that would read the row again, and hold a
        # connection until the session closes.
        return session_id

    def delete(self, session_id: str) -> None:
        conversation = self.get(session_id)
        self.session.exec(delete(AgentTurn).where(col(AgentTurn.session_id) == session_id))
        self.session.delete(conversation)
        self.session.commit()

    def messages(self, session_id: str) -> list[SessionMessage]:
        """What was said, by the user and by the agent, leaving out the tool calls."""
        messages = []
        for item in self.history(session_id):
            if item.get("role") == "user":
                messages.append(SessionMessage(role="user", content=text_of(item["content"])))
            elif item.get("type") == "message" and item.get("role") == "assistant":
                messages.append(SessionMessage(role="assistant", content=text_of(item["content"])))
        return messages


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))
