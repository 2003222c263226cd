"""`safecredit` — the operator's command line (operations.md).

Heavy libraries (Dagster, DuckDB, GX, pandas) are imported inside the commands that need them so
`safecredit --help` and `safecredit check` answer in about a second.
"""

from __future__ import annotations

import os
import sys
from datetime import date

import click

from safecredit.errors import UserError

HOME_HELP = "Home directory (default: $SAFECREDIT_HOME, else the working directory)."


class _Group(click.Group):
    """Turns user errors into a bilingual message and the documented exit code; never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except UserError as exc:
            click.secho(f"错误：{exc.zh}", fg="red", err=True)
            click.secho(f"Error: {exc.en}", fg="red", err=True)
            sys.exit(exc.exit_code)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except Exception:  # internal error: full detail to a log file, a pointer on screen
            import traceback

            from safecredit import config

            log = config.paths(None).logs / "internal-error.log"
            try:
                log.parent.mkdir(parents=True, exist_ok=True)
                log.write_text(traceback.format_exc(), encoding="utf-8")
                where = str(log)
            except OSError:
                where = "(could not write log) " + traceback.format_exc(limit=3)
            click.secho(
                f"内部错误，请将日志发送给维护人员：{where}\nInternal error; details in {where}", fg="red", err=True
            )
            sys.exit(4)


def _as_of(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UserError(
            f"日期 {value!r} 无效，应为 YYYY-MM-DD。", f"Invalid date {value!r}; expected YYYY-MM-DD."
        ) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="safecredit")
def main() -> None:
    """SafeCredit Exchange — 安全生产信用与联合惩戒数据交换平台."""


@main.command()
@click.option(
    "--port", default=8701, show_default=True, help="First port; departments take consecutive ports (0 = any free)."
)
@click.option("--seed", default=42, show_default=True, type=int)
@click.option("--scale", default=5000, show_default=True, type=int, help="Number of subjects.")
@click.option("--faults", default=None, help="Comma-separated faults (name or name:rate); `list` prints them.")
@click.option("--home", default=None, help=HOME_HELP)
def simulate(port: int, seed: int, scale: int, faults: str | None, home: str | None) -> None:
    """Serve simulated departments over HTTP (department-feeds.md)."""
    from safecredit import config
    from safecredit.simulator.command import simulate as run_simulator

    run_simulator(port=port, seed=seed, scale=scale, faults=faults, home=config.resolve_home(home))


@main.command()
@click.option("--sources", default=None, help="Sources file (default: $SAFECREDIT_SOURCES, else <home>/sources.yaml).")
@click.option("--home", default=None, help=HOME_HELP)
@click.option("--as-of", "as_of", default=None, help="Date the run answers for (YYYY-MM-DD; default today).")
@click.option(
    "--known-at",
    "known_at",
    default=None,
    help="Use only data landed by this date (YYYY-MM-DD): reproduces what a run on that date knew.",
)
def run(sources: str | None, home: str | None, as_of: str | None, known_at: str | None) -> None:
    """One full run in-process through Dagster: pull, validate, compute, publish."""
    from pipelines.runner import run_pipeline
    from safecredit.report import print_run_summary
    from safecredit.run_summary import exit_code

    os.environ.setdefault("SAFECREDIT_PROGRESS", "1")  # bars only where stderr is a terminal
    summary = run_pipeline(home, sources, _as_of(as_of), known_at=_as_of(known_at))
    print_run_summary(summary)
    sys.exit(exit_code(summary))


@main.command()
@click.option("--home", default=None, help=HOME_HELP)
@click.option("--scale", default=5000, show_default=True, type=int)
@click.option("--seed", default=42, show_default=True, type=int)
@click.option("--faults", default="realistic", show_default=True)
def demo(home: str | None, scale: int, seed: int, faults: str) -> None:
    """Start simulated departments, run the pipeline once, publish, and print a summary."""
    from pipelines.runner import run_pipeline
    from safecredit.demo import run_demo

    os.environ.setdefault("SAFECREDIT_PROGRESS", "1")
    sys.exit(run_demo(home, run_pipeline, scale=scale, seed=seed, faults=faults))


@main.command()
@click.option("--home", default=None, help=HOME_HELP)
@click.option("--dataset", default=None)
@click.option("--department", default=None)
@click.option("--as-of", "as_of", default=None, help="Date the run answers for (YYYY-MM-DD; default today).")
def replay(home, dataset, department, as_of) -> None:
    """Re-stage held-back or quarantined batches from the raw landing (no department calls).

    Staging is rebuilt from the whole raw landing under the current contracts and policy, so a
    batch held back before a fix is staged now; --dataset/--department narrow the report.
    """
    from pipelines.runner import run_pipeline
    from safecredit.report import print_run_summary
    from safecredit.run_summary import exit_code

    summary = run_pipeline(home, None, _as_of(as_of), replay=True)
    if dataset:
        summary.staged = {k: v for k, v in summary.staged.items() if k == dataset}
    if department:
        for m in summary.staged.values():
            m["held_back"] = [h for h in m.get("held_back", []) if h["department"] == department]
    print_run_summary(summary)
    sys.exit(exit_code(summary))


@main.command()
@click.argument("entry_id")
@click.option("--home", default=None, help=HOME_HELP)
@click.option("--json", "as_json", is_flag=True)
def explain(entry_id, home, as_json) -> None:
    """The source records behind a list entry, score or factor."""
    import json as _json

    from safecredit import config
    from safecredit.explain import explain as do_explain
    from safecredit.warehouse import open_reader

    with open_reader(config.paths(home)) as con:
        result = do_explain(con, entry_id)
    if as_json:
        click.echo(_json.dumps(result, ensure_ascii=False, indent=1, default=str))
        return
    from safecredit.report import print_explanation

    print_explanation(result)


@main.command()
@click.option("--restore", "restore", required=True, metavar="VERSION", help="Version to serve again.")
@click.option("--home", default=None, help=HOME_HELP)
def publish(restore: str, home: str | None) -> None:
    """Make an earlier complete version the one served again (recorded as a new version)."""
    from safecredit import config
    from safecredit.publish import Publisher

    p = config.paths(home)
    result = Publisher(p.exports, p.keys).restore(restore)
    click.echo(f"restored {restore} as {getattr(result, 'version', result)}")


DB_URL_HELP = "Service database (default: $SAFECREDIT_DB_URL, else SQLite <home>/service.db)."


@main.command()
@click.option("--home", default=None, help=HOME_HELP)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--db-url", "db_url", default=None, help=DB_URL_HELP)
def serve(home, host, port, db_url) -> None:
    """The HTTP API of exchange.md over the latest successful publication."""
    import uvicorn

    from safecredit import config
    from safecredit.api.app import LOG_CONFIG, create_app

    home_path = config.resolve_home(home)
    app = create_app(home_path, db_url)
    click.echo(f"SafeCredit Exchange API: http://{host}:{port}  (home {home_path}; OpenAPI /openapi.json)", err=True)
    click.echo(f"信用核查 check page: http://{host}:{port}/check  (sign in with a restrictions:read key)", err=True)
    # uvicorn's access log is off: the service logs each request itself, ID numbers masked
    uvicorn.run(app, host=host, port=port, access_log=False, log_config=LOG_CONFIG, server_header=False)


def _keys(home, db_url):
    from safecredit import config
    from safecredit.api.keys import key_service

    return key_service(config.resolve_home(home), db_url)


def _print_key(info: dict, key: str, what: str) -> None:
    click.echo(
        f"{what} for consumer {info['consumer']}: key id {info['key_id']}, scopes {','.join(info['scopes'])}, "
        f"rate {info['rate_per_second']:g}/s burst {info['burst']}"
    )
    click.echo("密钥只显示这一次，请立即妥善保存。The key is shown only once: store it now.")
    click.echo(key)


@main.group()
def keys() -> None:
    """Manage consumers' API keys."""


@keys.command("create")
@click.option("--consumer", required=True)
@click.option(
    "--scopes",
    required=True,
    help="Comma-separated: restrictions:read, lists:read, credit:read, premium:read, candidates:read.",
)
@click.option("--rate", "rate", type=float, default=None, help="Requests per second for this consumer (default 100).")
@click.option("--burst", "burst", type=int, default=None, help="Burst size for this consumer (default 1000).")
@click.option(
    "--authority",
    default=None,
    help="USCC of the deciding authority whose queue GET /v1/candidates answers this key (candidates:read).",
)
@click.option("--home", default=None, help=HOME_HELP)
@click.option("--db-url", "db_url", default=None, help=DB_URL_HELP)
def keys_create(consumer, scopes, rate, burst, authority, home, db_url) -> None:
    """Print a new API key, alone on the last line (shown once; stored hashed)."""
    info, key = _keys(home, db_url).create(consumer, scopes, rate_per_second=rate, burst=burst, authority=authority)
    _print_key(info, key, "new key")


@keys.command("list")
@click.option("--home", default=None, help=HOME_HELP)
@click.option("--db-url", "db_url", default=None, help=DB_URL_HELP)
@click.option("--json", "as_json", is_flag=True)
def keys_list(home, db_url, as_json) -> None:
    """Every key: id, consumer, scopes, limits, created, revoked (never the key itself)."""
    rows = _keys(home, db_url).list()
    if as_json:
        import json as _json

        click.echo(_json.dumps(rows, ensure_ascii=False, indent=1))
        return
    from safecredit.api.keys import format_when

    click.echo(f"{'KEY ID':<12} {'CONSUMER':<24} {'SCOPES':<54} {'RATE/BURST':<11} {'CREATED':<17} STATE")
    for r in rows:
        state = (
            f"revoked {format_when(r['revoked_at'])}" + (f" → {r['replaced_by']}" if r["replaced_by"] else "")
            if r["revoked_at"]
            else "active"
        )
        click.echo(
            f"{r['key_id']:<12} {r['consumer'][:24]:<24} {','.join(r['scopes']):<54} "
            f"{r['rate_per_second']:g}/{r['burst']:<6} {format_when(r['created_at']):<17} {state}"
        )
    if not rows:
        click.echo("(no keys yet: `safecredit keys create --consumer NAME --scopes …`)")


@keys.command("revoke")
@click.argument("key_id")
@click.option("--home", default=None, help=HOME_HELP)
@click.option("--db-url", "db_url", default=None, help=DB_URL_HELP)
def keys_revoke(key_id, home, db_url) -> None:
    """Revoke a key (the server refuses it within a second)."""
    info = _keys(home, db_url).revoke(key_id)
    click.echo(f"revoked {info['key_id']} of {info['consumer']} ({info['revoked_at']})")


@keys.command("rotate")
@click.argument("key_id")
@click.option("--home", default=None, help=HOME_HELP)
@click.option("--db-url", "db_url", default=None, help=DB_URL_HELP)
def keys_rotate(key_id, home, db_url) -> None:
    """A new key with the same consumer and scopes; the old one is revoked. Prints the new key last."""
    info, key = _keys(home, db_url).rotate(key_id)
    _print_key(info, key, f"rotated {key_id.strip()} → new key")


@main.group("signing-key")
def signing_key() -> None:
    """The Ed25519 key that signs manifests."""


@signing_key.command("export")
@click.option("--home", default=None, help=HOME_HELP)
def signing_key_export(home) -> None:
    """Print the public key that verifies manifest signatures."""
    from safecredit import config
    from safecredit.publish import SigningKey

    click.echo(SigningKey.load_or_create(config.paths(home).keys).public_pem().strip())


@main.command()
@click.option("--from", "source", required=True, metavar="URL|DIR", help="The API's base URL or an exports directory.")
@click.option(
    "--into",
    "into",
    required=True,
    metavar="PATH|URL",
    help="DuckDB file (default), *.sqlite / sqlite:///…, or postgresql://…",
)
@click.option("--public-key", "public_key", default=None, metavar="PEM", help="The operator's public key (required).")
@click.option("--feeds", default=None, help="Comma-separated feeds (default: every feed the source lists).")
@click.option("--key", default=None, help="API key for a URL source (default: $SAFECREDIT_MIRROR_KEY).")
def mirror(source, into, public_key, feeds, key) -> None:
    """Keep a verified local copy of the published feeds (exit 0 up to date, 1 verification failed, 3 unreachable)."""
    from safecredit.mirror.command import run_mirror

    run_mirror(source, into, public_key, feeds, key, click.echo)


@main.command()
@click.argument("code")
@click.option("--matter", default=None, help="e.g. government_procurement (exchange.md §2).")
@click.option("--as-of", "as_of", default=None, help="Answer for this date with today's knowledge (YYYY-MM-DD).")
@click.option("--known-at", "known_at", default=None, help="Answer with what was published by this date.")
@click.option(
    "--subject-type",
    "subject_type",
    type=click.Choice(["unit", "person"]),
    default=None,
    help="Needed for a code valid both as USCC and ID number, and for other identity documents.",
)
@click.option("--home", default=None, help=HOME_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print exactly the API's JSON body.")
def check(code, matter, as_of, known_at, subject_type, home, as_json) -> None:
    """May this unit or person be granted a matter? (from the latest publication)"""
    import json as _json

    from safecredit import config
    from safecredit.api.problems import ApiProblem
    from safecredit.api.restrictions import check_from_home
    from safecredit.errors import NothingPublished

    try:
        answer = check_from_home(
            config.resolve_home(home),
            code,
            matter=matter,
            as_of=_as_of(as_of),
            subject_type=subject_type,
            known_at=_as_of(known_at),
        )
    except ApiProblem as exc:
        if exc.kind == "not-published":
            raise NothingPublished(exc.zh or exc.en, exc.en + "; run `safecredit run` first.") from None
        raise UserError(exc.zh or exc.en, exc.en, exit_code=3 if exc.status == 503 else 2) from None
    if as_json:
        click.echo(_json.dumps(answer, ensure_ascii=False, separators=(",", ":")))
        return
    _print_answer(answer)


def _print_answer(a: dict) -> None:
    kind = "单位 unit" if a["subject_type"] == "unit" else "个人 person"
    verdict = (
        click.style("受限 RESTRICTED", fg="red", bold=True)
        if a["restricted"]
        else click.style("不受限 not restricted", fg="green", bold=True)
    )
    click.echo(f"{a['code']}  {kind}  {a.get('name') or '(未在名单中 / not on the list)'}")
    scope = f" for {a['matter']}" if a.get("matter") else ""
    click.echo(
        f"{verdict}{scope} — as of {a['as_of']}, version {a['version']}"
        + (f", known at {a['known_at']}" if a.get("known_at") else "")
    )
    if a["listings"]:
        click.echo("名单条目 Listings:")
        for x in a["listings"]:
            click.echo(
                f"  {x['entry_id']}  {x['ground']}  {x['status']:<16} {x['start_date']} → {x['end_date'] or '-'}  "
                f"{x.get('decision_no') or ''}  {x.get('authority') or ''}"
            )
    if a["measures"]:
        click.echo("惩戒措施 Measures:")
        for m in a["measures"]:
            until = "终身 for life" if m.get("for_life") else (m.get("restricted_until") or "-")
            click.echo(
                f"  {m['matter']:<24} {m.get('name') or '':<12} until {until}  ({m.get('source')} "
                f"{m.get('entry_id') or m.get('penalty_id') or ''})"
            )


if __name__ == "__main__":  # pragma: no cover
    main()
