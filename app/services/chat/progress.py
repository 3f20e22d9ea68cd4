"""What a turn's graph stream has produced so far, read as it goes."""

from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolMessage

from app.services.chat.events import Restart, Token, ToolEvent, TurnCollector, TurnEvent, content_text


class Progress:
    """What the graph's stream has produced so far: the turn's result, the messages of the steps that
    finished, and the reply being streamed."""

    def __init__(self) -> None:
        self.collector = TurnCollector()
        self.messages: list[BaseMessage] = []
        self.tokens: list[str] = []
        self.streaming_call: str | None = None  # id of the model call whose tokens are being streamed

    def on_message(self, message: BaseMessage, meta: dict[str, Any]) -> list[TurnEvent]:
        from_agent = isinstance(message, AIMessageChunk) and meta.get("langgraph_node") == "agent"
        if not from_agent or not (token := content_text(message.content)):
            return []
        events: list[TurnEvent] = []
        if self.streaming_call is not None and message.id != self.streaming_call:
            self.tokens = []
            events.append(Restart())  # a fallback took over from a call that failed mid-stream
        self.streaming_call = message.id
        self.tokens.append(token)
        events.append(Token(token))
        return events

    def on_update(self, chunk: dict[str, Any]) -> list[ToolEvent]:
        self.streaming_call, self.tokens = None, []  # a node finished: the next model call starts anew
        for update in chunk.values():
            if isinstance(update, dict):
                self.messages.extend(update.get("messages") or [])
        return self.collector.apply(chunk)

    def finished_messages(self) -> list[BaseMessage]:
        """The finished steps' messages, without a last tool call whose result never came."""
        done = list(self.messages)
        answered = {m.tool_call_id for m in done if isinstance(m, ToolMessage)}
        while done and isinstance(done[-1], AIMessage) and done[-1].tool_calls:
            if all(c["id"] in answered for c in done[-1].tool_calls):
                break
            done.pop()
        return done

    def partial_reply(self) -> str:
        return "".join(self.tokens)
