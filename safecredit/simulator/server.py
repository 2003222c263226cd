"""HTTP side of the department simulator: one stdlib ThreadingHTTPServer per department, serving
the answers of endpoints.py (department-feeds.md) over the :class:`~safecredit.simulator.store.Store`,
with the HTTP faults played on them."""

from __future__ import annotations

import socket
import sys
import threading
import traceback
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterable

from . import data_faults as DF
from . import faults as F
from .endpoints import CURSOR_TTL, Endpoints, Reply, _error
from .store import SHANGHAI, Store, read_meta, to_local


def _parse_now(value) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if not isinstance(value, datetime):
        raise TypeError("now must be a datetime or an ISO string")
    return to_local(value)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, addr, sim: Simulator, dept: Department):
        self.sim, self.dept = sim, dept
        super().__init__(addr, _Handler)

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, socket.timeout)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "SafeCreditSim/1"
    timeout = 60

    def do_GET(self):
        self.server.sim._serve(self.server.dept, self, "GET")

    def do_POST(self):
        self.server.sim._serve(self.server.dept, self, "POST")

    do_PUT = do_DELETE = do_PATCH = do_POST

    def log_message(self, format, *args):
        if self.server.sim.verbose:
            super().log_message(format, *args)


@dataclass
class Department:
    id: str
    name: str
    token: str
    transports: list[str]
    datasets: list[str]
    host: str
    port: int = 0
    down: str | None = None  # None, "503" or "refuse"
    kind: str = "other"  # its list regime in the sources file (operations.md)
    server: _Server | None = None
    thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def transport(self) -> str:
        return "json" if "json" in self.transports else "csv"


def _token(seed: int, dept: str) -> str:
    return f"sim-{dept}-{F.hv(seed, 'token', dept):08x}"


class Simulator(Endpoints):
    """Simulated departments serving generated data with faults. Use :func:`start_simulator`."""

    def __init__(
        self,
        data_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 8701,
        seed: int = 0,
        faults: Iterable[str] | dict[str, float] | str = (),
        departments: list[str] | None = None,
        sim_now: datetime | None = None,
        stall_seconds: float = 3.0,
        cursor_ttl: float = CURSOR_TTL,
        verbose: bool = False,
    ):
        self.data_dir = Path(data_dir)
        self.meta = read_meta(self.data_dir)
        self.seed = int(seed)
        self.host = host
        self.stall_seconds = float(stall_seconds)
        self.cursor_ttl = float(cursor_ttl)
        self.verbose = verbose
        known = [d["id"] for d in self.meta["departments"]]
        chosen = list(known) if departments is None else list(departments)
        unknown = sorted(set(chosen) - set(known))
        if unknown:
            raise ValueError(f"unknown departments {unknown}; the data has {known}")
        all_datasets = {ds for d in self.meta["departments"] for ds in d["datasets"]} | set(DF.DATE_FIELD)
        self.cfg = F.FaultConfig.resolve(faults, known, all_datasets)
        self.store = Store(self.data_dir, self.meta, chosen, self.seed, self.cfg)
        self._now = _parse_now(sim_now) if sim_now is not None else self.store.end
        self._attempts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._inflight = 0
        self._idle = threading.Condition(self._lock)
        # what the departments saw of a client's concurrency (tests of politeness): requests each
        # was answering at once, at most, and the most departments answering at once
        self._busy: dict[str, int] = {}
        self.max_in_flight: dict[str, int] = {}
        self.max_departments_busy = 0
        self._meet, self._meet_timeout = 0, 0.0  # set by meet_departments
        self._depts: dict[str, Department] = {}
        self._stopped = False
        by_id = {d["id"]: d for d in self.meta["departments"]}
        try:
            for i, dept_id in enumerate(chosen):
                d = by_id[dept_id]
                mode = self.cfg.mode("down", dept_id)
                dept = Department(
                    dept_id,
                    d.get("name", dept_id),
                    _token(self.seed, dept_id),
                    list(d.get("transports", ["json"])),
                    list(d["datasets"]),
                    host,
                    port=port + i if port else 0,
                    down=None if mode is None else (mode or "503"),
                    kind=d.get("kind", "other"),
                )
                self._depts[dept_id] = dept
                if dept.down == "refuse":
                    dept.port = dept.port or _free_port(host)
                else:
                    self._listen(dept)
        except BaseException:
            self.stop()
            raise

    # ------------------------------------------------------------ lifecycle

    def _listen(self, dept: Department):
        dept.server = _Server((self.host, dept.port), self, dept)
        dept.port = dept.server.server_address[1]
        dept.thread = threading.Thread(
            target=dept.server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"sim-{dept.id}", daemon=True
        )
        dept.thread.start()

    def _unlisten(self, dept: Department):
        if dept.server is not None:
            dept.server.shutdown()
            dept.server.server_close()
            dept.server = dept.thread = None

    def stop(self):
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        closers = [threading.Thread(target=self._unlisten, args=(d,)) for d in self._depts.values()]
        for c in closers:
            c.start()
        for c in closers:
            c.join()
        with self._idle:
            self._idle.wait_for(lambda: self._inflight == 0, timeout=5)
        self.store.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def set_down(self, dept_id: str, mode: str | None = "503"):
        """Take a department down (``"503"`` answers 503, ``"refuse"`` stops listening) or up (None)."""
        if mode not in (None, "503", "refuse"):
            raise ValueError("mode must be None, '503' or 'refuse'")
        dept = self._depts[dept_id]
        if mode == "refuse" and dept.server is not None:
            self._unlisten(dept)
        elif mode != "refuse" and dept.server is None:
            self._listen(dept)
        dept.down = mode

    # ------------------------------------------------------------ public API

    @property
    def departments(self) -> list[dict]:
        return [
            {
                "id": d.id,
                "name": d.name,
                "base_url": d.base_url,
                "token": d.token,
                "transport": d.transport,
                "kind": d.kind,
                "datasets": list(d.datasets),
            }
            for d in self._depts.values()
        ]

    @property
    def now(self) -> datetime:
        return self._now.replace(tzinfo=SHANGHAI)

    def set_now(self, dt) -> None:
        self._now = _parse_now(dt)

    def truth(self, dept: str, dataset: str) -> list[dict]:
        t = self.store.tables.get((dept, dataset))
        if t is None:
            raise KeyError(f"{dept} does not serve {dataset}")
        return self.store.truth(t, self._now)

    def write_sources(self, path: Path) -> Path:
        import yaml

        doc = {
            "departments": [
                {k: d[k] for k in ("id", "name", "base_url", "token", "transport", "kind", "datasets")}
                for d in self.departments
            ]
        }
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, default_flow_style=None), encoding="utf-8"
        )
        return path

    # ------------------------------------------------------------ request handling

    def meet_departments(self, n: int, timeout: float = 10.0) -> None:
        """Test hook: hold the first requests until `n` departments are being answered at once (or
        `timeout` passes), so a client that asks them concurrently is seen doing so however fast
        the answers are, and a sequential one is seen not to."""
        with self._idle:
            self._meet, self._meet_timeout = n, timeout

    def _enter(self, dept_id: str) -> None:
        with self._idle:
            self._busy[dept_id] = n = self._busy.get(dept_id, 0) + 1
            self.max_in_flight[dept_id] = max(self.max_in_flight.get(dept_id, 0), n)
            busy = sum(1 for v in self._busy.values() if v)
            self.max_departments_busy = max(self.max_departments_busy, busy)
            self._idle.notify_all()
            if self._meet:
                self._idle.wait_for(
                    lambda: not self._meet or sum(1 for v in self._busy.values() if v) >= self._meet,
                    timeout=self._meet_timeout,
                )
                self._meet = 0  # once: met or timed out, nobody else is held

    def _leave(self, dept_id: str) -> None:
        with self._idle:
            self._busy[dept_id] -= 1

    def _serve(self, dept: Department, req: _Handler, method: str):
        with self._lock:
            self._inflight += 1
        try:
            if self._stopped:
                req.close_connection = True
                return
            # counted until the reply is ready, not until it is sent: a client that waits for the
            # whole body before its next request is never seen with one more than it has in flight
            self._enter(dept.id)
            try:
                reply, key, dataset = self._route(dept, req, method)
                action = self._http_fault(dept, key, dataset) if reply.status == 200 and key else None
            except Exception:  # a bug of ours: say so, and keep serving
                traceback.print_exc()
                reply, action = _error(500, "internal simulator error"), None
            finally:
                self._leave(dept.id)
            self._write(req, reply, action, dept, key if action else None)
        finally:
            with self._idle:
                self._inflight -= 1
                self._idle.notify_all()

    # ------------------------------------------------------------ HTTP faults

    def _http_fault(self, dept: Department, key: str, dataset: str | None) -> str | None:
        """The fault to play on this attempt of ``key``: the n-th attempt plays the n-th selected fault."""
        selected = [
            f
            for f in F.HTTP_ONCE_FAULTS
            if (f != "expired_cursor" or "cursor=" in key)
            and F.unit(self.seed, f, key) < self.cfg.rate(f, dept.id, dataset)
        ]
        if not selected:
            return None
        with self._lock:
            n = self._attempts[f"{dept.id} {key}"] = self._attempts.get(f"{dept.id} {key}", 0) + 1
        return selected[n - 1] if n <= len(selected) else None

    def _write(self, req: _Handler, reply: Reply, action: str | None, dept: Department, key: str | None):
        if action == "http_429":
            reply = _error(429, "too many requests", **{"Retry-After": "1"})
        elif action == "http_5xx":
            status = (500, 502, 503, 504)[F.hv(self.seed, "http_5xx", "status", key) % 4]
            reply = _error(status, "transient failure")
        elif action == "expired_cursor":
            reply = _error(410, "cursor expired: start again from updated_since")
        elif action == "stall":
            if self._stopping.wait(self.stall_seconds):
                req.close_connection = True
                return
        body, length = reply.body, len(reply.body)
        if action == "cut_short":
            req.close_connection = True
            if reply.chunks is not None and self.cfg.mode("cut_short", dept.id) == "rows" and len(reply.chunks) > 1:
                body = b"".join(reply.chunks[: 1 + (len(reply.chunks) - 1) // 2])
                length = len(body)
            else:
                body = body[: len(body) // 2]
        try:
            req.send_response(reply.status)
            for k, v in reply.headers.items():
                req.send_header(k, v)
            req.send_header("Content-Length", str(length))
            if req.close_connection:
                req.send_header("Connection", "close")
            req.end_headers()
            if req.command != "HEAD":
                req.wfile.write(body)
            req.wfile.flush()
        except (ConnectionError, TimeoutError):
            req.close_connection = True


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def start_simulator(
    data_dir: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8701,
    seed: int = 0,
    faults: Iterable[str] | dict[str, float] | str = (),
    departments: list[str] | None = None,
    sim_now: datetime | None = None,
    stall_seconds: float = 3.0,
    **kwargs,
) -> Simulator:
    """Start the departments of ``data_dir`` (generator layout) and return the running simulator."""
    return Simulator(
        data_dir,
        host=host,
        port=port,
        seed=seed,
        faults=faults,
        departments=departments,
        sim_now=sim_now,
        stall_seconds=stall_seconds,
        **kwargs,
    )
