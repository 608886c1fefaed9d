"""The NCA tool: ``ff_nca_grow`` grows a trained cellular-automaton rule from its seed (and regrows it
after damage) and returns the picture strip. Rules live in ``<home>/nca/<name>.safetensors``, where
``ff-mcp nca train --name NAME`` puts them (ff_mcp/nca)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, ImageContent, TextContent, ToolAnnotations
from pydantic import BaseModel, Field, StrictBool, StrictInt

from ff_mcp.server.errors import NotFoundError, client_errors
from ff_mcp.server.executor import CallToken
from ff_mcp.server.registry import NAME_PATTERN, validate_name

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
MAX_STEPS = 500

RuleName = Annotated[str, Field(min_length=1, max_length=64, pattern=NAME_PATTERN,
                                description="an NCA rule saved by `ff-mcp nca train --name NAME`")]


class NcaGrowth(BaseModel):
    """ff_nca_grow's summary; the strip itself comes as PNG image content."""

    model: str
    rule: str = Field(description="how the rule was learned: ff (forward-only) or bptt")
    steps: int
    damage: bool
    growth_mse: float = Field(description="RGBA mean squared error to the target after the growth steps (4 runs)")
    restored_after_damage: float | None = Field(
        description="fraction of the damaged target pixels within 0.15 of the target after regrowth (null "
                    "without damage)")
    width: int
    height: int


def nca_dir(home: Path) -> Path:
    return Path(home) / "nca"


def rule_path(home: Path, name: str) -> Path:
    """The file of rule ``name``; NotFoundError listing the saved rules when there is none."""
    validate_name(name, "model")
    path = nca_dir(home) / f"{name}.safetensors"
    if not path.is_file():
        saved = sorted(p.stem for p in nca_dir(home).glob("*.safetensors"))
        raise NotFoundError(f"model: no NCA rule named {name!r}; saved: {', '.join(saved) or 'none'} "
                            f"(ff-mcp nca train --name NAME saves one)")
    return path


def register_nca_tools(server: MCPServer) -> None:
    @server.tool(name="ff_nca_grow", title="Grow a cellular automaton", annotations=READ_ONLY)
    async def ff_nca_grow(
        ctx: Context,
        model: RuleName,
        steps: Annotated[StrictInt, Field(ge=1, le=MAX_STEPS, description=f"growth steps from the seed, and as many "
                                                                          f"after the damage (1-{MAX_STEPS})")] = 96,
        damage: Annotated[StrictBool, Field(description="erase a disk after growing and show the regrowth")] = True,
    ) -> Annotated[CallToolResult, NcaGrowth]:
        """Grow a trained NCA rule from its one-cell seed and return a PNG strip of the growth (and, with
        damage, of the damaged state and its regrowth), the target last, with the growth error and the
        fraction of the damaged area restored."""
        state = ctx.request_context.lifespan_context
        with client_errors():
            if not 1 <= steps <= MAX_STEPS:
                raise ValueError(f"steps must be in [1, {MAX_STEPS}], got {steps}")
            path = rule_path(state.config.home, model)

            def work(token: CallToken):
                try:
                    from ff_mcp.nca import measure
                    from ff_mcp.nca.cli import _decode
                except ImportError as exc:
                    raise ValueError(f"ff_nca_grow: {exc}") from None
                params, meta = measure.load_rule(path)
                target = _decode(meta)
                token.check()
                scores = measure.growth_and_regeneration(params, target, grow=steps, regrow=steps)
                token.check()
                picture = measure.strip(params, target, steps=steps, damage=damage)
                return meta, scores, picture, measure.png_bytes(picture)

            meta, scores, picture, png = await state.executor.run(work)
            result = NcaGrowth(model=model, rule=str(meta.get("rule")), steps=steps, damage=damage,
                               growth_mse=scores["growth_mse"],
                               restored_after_damage=scores["restored_after_damage"] if damage else None,  # None: missed
                               width=int(picture.shape[1]), height=int(picture.shape[0]))
        return CallToolResult(content=[TextContent(type="text", text=result.model_dump_json()),
                                       ImageContent(type="image", data=base64.b64encode(png).decode("ascii"),
                                                    mime_type="image/png")],
                              structured_content=result.model_dump(mode="json"))
