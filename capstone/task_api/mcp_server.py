"""/mcp: the Task tools for any MCP client, over Streamable HTTP, as the agents' own code.

An MCP client (an IDE assistant, the MCP Inspector, another agent built with the Agents SDK's
`MCPServerStreamableHttp`) lists the tools and calls them. They are the agents' function tools
(agents/tools.py), served as they are: the same functions, the same JSON Schemas, on the
caller's tasks only, with the same errors ("Task 9 not found") and the same task events.

Every request carries `Authorization: Bearer <login token or API key>`, checked as on every
route and counted against the caller's rate limit. A key's scopes decide what it sees: with
`read`, the tools that only read; with `write`, the others too. The server is stateless: each
POST is one JSON-RPC exchange answered as JSON, so nothing is held between calls, and a revoked
key or an expired token is refused at its next call.

An MCP client asks its own user before a tool its annotations call destructive: `delete_task`
runs when called here, without the approval the agents need (part 14), because the person
is at the client, and the client asks them.
"""

import json
import uuid
from typing import Any

from agents import FunctionTool, trace
from agents.tool_context import ToolContext
from agents.tracing import function_span
from fastapi.concurrency import run_in_threadpool
from jsonschema import Draft202012Validator
from mcp import types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.types import Receive, Send
from starlette.types import Scope as AsgiScope

from task_api.agents.tools import TaskContext, tool_error
from task_api.config import Settings
from task_api.deps import Caller, authenticate
from task_api.errors import NotAuthenticated
from task_api.models import Scope
from task_api.security import looks_like_an_api_key


def annotations(title: str, *, reads_only: bool = False, **hints: bool) -> types.ToolAnnotations:
    """What a tool does to the caller's tasks, for an MCP client to decide what to ask its user
    first. Every tool works on this service's tasks only: none reaches an open world."""
    if reads_only:
        return types.ToolAnnotations(title=title, read_only_hint=True, open_world_hint=False)
    return types.ToolAnnotations(title=title, read_only_hint=False, open_world_hint=False, **hints)


ANNOTATIONS = {
    "list_tasks": annotations("List tasks", reads_only=True),
    "get_task": annotations("Read a task", reads_only=True),
    "create_task": annotations("Create a task", destructive_hint=False, idempotent_hint=False),
    "update_task": annotations("Change a task", destructive_hint=True, idempotent_hint=True),
    "complete_task": annotations("Complete a task", destructive_hint=False, idempotent_hint=True),
    "delete_task": annotations("Delete a task", destructive_hint=True, idempotent_hint=True),
}


def scope_for(tool: FunctionTool) -> Scope:
    """The scope a key needs to see and call the tool."""
    return Scope.READ if ANNOTATIONS[tool.name].read_only_hint else Scope.WRITE


def caller_of(ctx: ServerRequestContext[Any, Any]) -> Caller:
    """The caller McpEndpoint found for this HTTP request."""
    assert isinstance(ctx.request, Request)
    return ctx.request.state.caller  # type: ignore[no-any-return]


def failed(message: str) -> types.CallToolResult:
    """A tool error, as MCP reports one: a result the client's model reads, not a crash."""
    text = json.dumps({"error": message})
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)


def build_mcp_server(tools: list[FunctionTool]) -> Server[Any]:
    """An MCP server of these tools, for whoever each request's credentials name."""
    by_name = {tool.name: tool for tool in tools}
    # The arguments are checked against the schema the client was shown, with a message that
    # says what is wrong (the SDK's own check says only "Invalid JSON input").
    checks = {tool.name: Draft202012Validator(tool.params_json_schema) for tool in tools}

    async def list_tools(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        scopes = caller_of(ctx).scopes
        return types.ListToolsResult(
            tools=[
                types.Tool(
                    name=tool.name,
                    description=tool.description,
                    input_schema=tool.params_json_schema,
                    annotations=ANNOTATIONS[tool.name],
                )
                for tool in tools
                if scope_for(tool) in scopes
            ]
        )

    async def call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        caller = caller_of(ctx)
        tool = by_name.get(params.name)
        if tool is None:
            return failed(f"There is no tool called {params.name!r}")
        if (needed := scope_for(tool)) not in caller.scopes:
            return failed(f"This API key lacks the {needed} scope that {tool.name} needs")
        problem = next(checks[tool.name].iter_errors(params.arguments or {}), None)
        if problem is not None:
            where = ".".join(str(part) for part in problem.absolute_path)
            return failed(
                f"Invalid arguments for {tool.name}: {where or 'arguments'}: {problem.message}"
            )
        assert ctx.request is not None and caller.user.id is not None
        state = ctx.request.app.state
        context = TaskContext(owner_id=caller.user.id, engine=state.engine, events=state.broker)
        arguments = json.dumps(params.arguments or {})
        call = ToolContext(
            context=context,
            tool_name=tool.name,
            tool_call_id=f"mcp_{uuid.uuid4().hex}",
            tool_arguments=arguments,
        )
        # The agents' own call: the SDK runs the function in a worker thread, and turns a
        # failure into `tool_failed`'s answer. In a span of a trace that records nothing, as
        # in an agent run with tracing off (outside one, the SDK warns at each failure).
        with trace("MCP tool call", disabled=True), function_span(tool.name):
            output = str(await tool.on_invoke_tool(call, arguments))
        is_error = tool_error(output) is not None
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=output)], is_error=is_error
        )

    return Server(
        "TaskManager",
        version="1.0.0",
        instructions="Your tasks in the TaskManager: list, read, create, change, complete and "
        "delete them. Each tool works on the tasks of the user whose credentials you sent.",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


def mcp_session_manager(
    tools: list[FunctionTool], settings: Settings
) -> StreamableHTTPSessionManager:
    """Stateless, answered as JSON: each POST stands alone. The service's own checks (the
    credentials, ALLOWED_HOSTS, MAX_BODY_BYTES) come first; the SDK's localhost-only Host
    check would refuse a deployed service's own name."""
    return StreamableHTTPSessionManager(
        app=build_mcp_server(tools),
        json_response=True,
        stateless=True,
        security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        max_request_body_size=settings.max_body_bytes,
    )


def credentials_of(authorization: str | None) -> tuple[str | None, str | None]:
    """(token, key) from `Authorization: Bearer <token or key>`: MCP clients send one header."""
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise NotAuthenticated("Send Authorization: Bearer <login token or API key>")
    value = value.strip()
    return (None, value) if looks_like_an_api_key(value) else (value, None)


class McpEndpoint:
    """The ASGI app at /mcp: the caller first, as on every route, then the MCP exchange."""

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        state = request.app.state
        token, api_key = credentials_of(request.headers.get("authorization"))
        caller = await run_in_threadpool(
            authenticate, state.engine, state.settings, token, api_key
        )
        assert caller.user.id is not None
        await state.rate_limits.hit_user(caller.user.id)
        scope.setdefault("state", {})["caller"] = caller
        await state.mcp.handle_request(scope, receive, send)
