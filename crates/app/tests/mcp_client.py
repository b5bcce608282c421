"""An independent MCP client against FluxoLab's /api/mcp: the official MCP Python SDK
(`mcp` on PyPI, installed by `cargo xtask mcp-client`) over Streamable HTTP.

Run by crates/app/tests/api/mcp.rs, which sets up the workspaces, tools and keys and
passes them in the environment:

  MCP_URL            http://127.0.0.1:PORT/api/mcp
  MCP_KEY            an API key (workflows.read, workflows.run, executions.read)
  MCP_WORKFLOW_ID    the `greet` tool's workflow, read as a resource
  MCP_FOREIGN_TOOL   a tool of another workspace, which must stay invisible

`main` checks initialize, tools/list, tools/call (an answer, a final output with progress
notifications, invalid arguments naming the field, another workspace's tool) and
resources; `quota` checks that a call over the quota is a tool error. Any failure exits
non-zero with a message on stderr.
"""

import asyncio
import json
import os
import sys

import httpx2
from mcp import ClientSession, MCPError
from mcp.client.streamable_http import streamable_http_client


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def text_of(result):
    return " ".join(block.text for block in result.content if getattr(block, "text", None))


async def main_phase(session):
    init = await session.initialize()
    check(init.protocol_version == "2025-11-25", f"negotiated {init.protocol_version}")
    check(init.server_info.name == "fluxolab", f"server {init.server_info}")

    tools = await session.list_tools()
    names = sorted(tool.name for tool in tools.tools)
    check(names == ["greet", "slow_sum"], f"tools/list gave {names}")
    greet = next(tool for tool in tools.tools if tool.name == "greet")
    check(greet.input_schema.get("required") == ["name"], f"greet schema {greet.input_schema}")
    check(os.environ["MCP_FOREIGN_TOOL"] not in names, "another workspace's tool is listed")

    answered = await session.call_tool("greet", {"name": "Ada"})
    check(not answered.is_error, f"greet failed: {text_of(answered)}")
    check(answered.structured_content == {"greeting": "Hello, Ada"}, f"greet gave {answered}")

    progress = []

    async def on_progress(done, total, message):
        progress.append((done, total, message))

    summed = await session.call_tool("slow_sum", {"a": 2, "b": 3}, progress_callback=on_progress)
    check(not summed.is_error, f"slow_sum failed: {text_of(summed)}")
    check(summed.structured_content == {"sum": 5}, f"slow_sum gave {summed}")
    check(len(progress) >= 1, f"no progress notifications while waiting: {progress}")

    invalid = await session.call_tool("greet", {"nom": "Ada"})
    check(invalid.is_error, f"invalid arguments were accepted: {invalid}")
    check("arguments.name" in text_of(invalid), f"the error names no field: {text_of(invalid)}")

    try:
        foreign = await session.call_tool(os.environ["MCP_FOREIGN_TOOL"], {})
    except MCPError as error:
        check(error.code == -32602, f"unknown tool answered {error.code}")
    else:
        raise AssertionError(f"another workspace's tool was called: {foreign}")

    resources = await session.list_resources()
    uri = f"fluxolab://workflows/{os.environ['MCP_WORKFLOW_ID']}"
    check(uri in [str(resource.uri) for resource in resources.resources], f"{uri} not listed")
    read = await session.read_resource(uri)
    workflow = json.loads(read.contents[0].text)
    check(workflow["name"] == "Greeter", f"read {workflow}")
    check(workflow["definition"]["nodes"][0]["type"] == "trigger.mcp", f"read {workflow}")


async def quota_phase(session):
    await session.initialize()
    refused = await session.call_tool("greet", {"name": "Bo"})
    check(refused.is_error, f"a call over the quota ran: {refused}")
    check("quota_exceeded" in text_of(refused), f"not a quota error: {text_of(refused)}")


async def run(phase):
    headers = {"Authorization": f"Bearer {os.environ['MCP_KEY']}"}
    timeout = httpx2.Timeout(30.0, read=120.0)
    async with httpx2.AsyncClient(headers=headers, timeout=timeout) as http:
        async with streamable_http_client(os.environ["MCP_URL"], http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await {"main": main_phase, "quota": quota_phase}[phase](session)


if __name__ == "__main__":
    try:
        asyncio.run(run(sys.argv[1]))
    except Exception as error:  # noqa: BLE001 - every failure is the test's failure
        print(f"mcp client: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)
    print("ok")
