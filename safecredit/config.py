"""Where things live (the home directory) and the sources file (operations.md).

`--home` > `SAFECREDIT_HOME` > the current working directory. Everything a run writes lives
under the home: raw landing, warehouse, exports, signing key, Dagster instance.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import timedelta, timezone
from pathlib import Path

from safecredit.errors import ConfigError

#: the bureau's time zone: business dates, department clocks and schedules are Asia/Shanghai
SHANGHAI = timezone(timedelta(hours=8))
DATASETS = ("enterprises", "penalties", "accidents", "intermediary_ratings", "credit_actions")
TRANSPORTS = ("json", "csv")
REPO_ROOT = Path(__file__).resolve().parent.parent
CONTRACTS_DIR = REPO_ROOT / "contracts"
RULES_DIR = REPO_ROOT / "rules"


@dataclass(frozen=True)
class Paths:
    home: Path

    @property
    def raw(self) -> Path:
        return self.home / "raw"

    @property
    def warehouse_dir(self) -> Path:
        return self.home / "warehouse"

    @property
    def warehouse(self) -> Path:
        return self.warehouse_dir / "warehouse.duckdb"

    @property
    def lock(self) -> Path:
        return self.warehouse_dir / "writer.lock"

    @property
    def exports(self) -> Path:
        env = os.environ.get("SAFECREDIT_EXPORTS")
        return Path(env).resolve() if env else self.home / "exports"

    @property
    def keys(self) -> Path:
        return self.home / "keys"

    @property
    def dagster_home(self) -> Path:
        env = os.environ.get("DAGSTER_HOME")
        return Path(env).resolve() if env else self.home / "dagster"

    @property
    def sim(self) -> Path:
        return self.home / "sim"

    @property
    def logs(self) -> Path:
        return self.home / "logs"


def resolve_home(home: str | os.PathLike | None = None) -> Path:
    value = home or os.environ.get("SAFECREDIT_HOME") or os.getcwd()
    return Path(value).expanduser().resolve()


def paths(home: str | os.PathLike | None = None) -> Paths:
    return Paths(resolve_home(home))


def resolve_sources_path(sources: str | os.PathLike | None, home: Path) -> Path:
    value = sources or os.environ.get("SAFECREDIT_SOURCES") or (home / "sources.yaml")
    return Path(value).expanduser().resolve()


@dataclass(frozen=True)
class Department:
    id: str
    name: str
    base_url: str
    token: str
    transport: str
    datasets: tuple[str, ...]
    since: str | None = None
    options: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def kind(self) -> str:
        """emergency / housing / transport / market / other (operations.md; default other)."""
        return str(self.options.get("kind") or "other")


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_env(value: str, where: str) -> str:
    """Replace `${VAR}` from the environment; an unset variable is a config error (exit 2)."""

    def sub(m: re.Match) -> str:
        name = m.group(1)
        if name not in os.environ:
            raise ConfigError(
                f"环境变量 {name} 未设置（{where}）。请先 export {name}=… 再运行。",
                f"Environment variable {name} is not set ({where}). Export {name}=… and run again.",
            )
        return os.environ[name]

    return _VAR.sub(sub, value)


def load_sources(path: Path) -> list[Department]:
    """Parse and check the sources file; every problem is a ConfigError naming the place."""
    import yaml  # local: keep `safecredit --help` fast

    if not path.exists():
        raise ConfigError(
            f"找不到数据源配置文件 {path}。请用 --sources 指定，或先运行 `safecredit simulate` 生成。",
            f"Sources file {path} not found. Pass --sources, or run `safecredit simulate` to write one.",
        )
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"数据源配置文件 {path} 不是合法的 YAML：{exc}", f"Sources file {path} is not valid YAML: {exc}"
        ) from None
    entries = doc.get("departments") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}：缺少 departments 列表。", f"{path}: missing a `departments:` list.")
    seen: set[str] = set()
    out: list[Department] = []
    for i, e in enumerate(entries):
        where = f"{path} departments[{i}]"
        if not isinstance(e, dict):
            raise ConfigError(f"{where}：应为映射。", f"{where}: must be a mapping.")
        missing = [k for k in ("id", "base_url", "token", "datasets") if not e.get(k)]
        if missing:
            raise ConfigError(
                f"{where}：缺少字段 {', '.join(missing)}。", f"{where}: missing field(s) {', '.join(missing)}."
            )
        dep_id = str(e["id"])
        if dep_id in seen:
            raise ConfigError(f"{where}：部门 id {dep_id} 重复。", f"{where}: duplicate department id {dep_id}.")
        seen.add(dep_id)
        transport = str(e.get("transport", "json"))
        if transport not in TRANSPORTS:
            raise ConfigError(
                f"{where}：transport 必须是 json 或 csv，而不是 {transport}。",
                f"{where}: transport must be json or csv, not {transport}.",
            )
        datasets = e["datasets"]
        if isinstance(datasets, str):
            datasets = [d.strip() for d in datasets.split(",")]
        unknown = [d for d in datasets if d not in DATASETS]
        if unknown:
            raise ConfigError(
                f"{where}：未知数据集 {', '.join(unknown)}（可用：{', '.join(DATASETS)}）。",
                f"{where}: unknown dataset(s) {', '.join(unknown)} (known: {', '.join(DATASETS)}).",
            )
        since = e.get("since")
        out.append(
            Department(
                id=dep_id,
                name=str(e.get("name", dep_id)),
                base_url=expand_env(str(e["base_url"]), f"{where}.base_url").rstrip("/"),
                token=expand_env(str(e["token"]), f"{where}.token"),
                transport=transport,
                datasets=tuple(datasets),
                since=str(since) if since else None,
                options={
                    k: v
                    for k, v in e.items()
                    if k not in {"id", "name", "base_url", "token", "transport", "datasets", "since"}
                },
            )
        )
    return out
