"""The network end of a project on another machine: run as root on the node (by a cluster
job), it starts the project's sandbox behind a node-local Unix socket exactly as a hub on
the node would, then serves that socket over TCP with TLS.

    __main__.py relay CONFIG_PATH

Trust: the TLS key is made here at each start and never leaves this process's memory (the
sandbox cannot read it: it runs as root, outside). Its certificate's SHA-256 fingerprint is
published in `address.json` next to the config, in a root-only folder the hubs share; hubs
pin it, so nobody else can pose as this project. A hub proves itself with the project's token
in the first frame of each connection; this side holds only the token's SHA-256 digest and
compares in constant time. Until a connection has proven itself, nothing reaches the agent.
A proven connection may carry one request after another (the handshake is what costs), each
passed to the agent on a Unix connection of its own, as the agent's protocol has it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import time
from typing import Any

from .kernel import descendants_of
from .wire import MAX_HEADER, recv_frame, send_frame

FRAME = struct.Struct(">I")
AGENT_FD = 3  # where the sandbox finds its listening socket
MAX_AUTH_FRAME = 1024
HANDSHAKE_TIMEOUT_S = 10.0
MONITOR_END_S = 5.0  # for bubblewrap's monitor to end once the sandbox has been killed
# A hub keeps connections for reuse for less than this (calchub.runtime.channel).
IDLE_CONNECTION_S = 30.0
CHUNK = 1 << 16


def relay_main(argv: list[str]) -> int:
    if len(argv) != 1:
        return 2
    with open(argv[0], encoding="utf-8") as f:
        config = json.load(f)
    relay = Relay(config)
    # Before any event loop: its descriptors must not sit where the sandbox's socket goes.
    relay.spawn_sandbox()
    return asyncio.run(relay.run())


class Relay:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.rundir: str = config["rundir"]
        self.sock_dir: str = config["sock_dir"]
        self.sock_path = os.path.join(self.sock_dir, "sock")
        self.digest = bytes.fromhex(config["token_digest"])
        self.sandbox: subprocess.Popen[bytes] | None = None
        self.clients: set[asyncio.StreamWriter] = set()

    async def run(self) -> int:
        try:
            loop = asyncio.get_running_loop()
            exited = loop.create_future()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.add_signal_handler(sig, _settle, exited, 143)
            await self._wait_ready()
            tls, fingerprint = _make_tls()
            server = await asyncio.start_server(
                self._serve,
                host=self.config.get("bind", "0.0.0.0"),  # noqa: S104 - the node's network
                port=int(self.config.get("port", 0)),
                ssl=tls,
                ssl_handshake_timeout=HANDSHAKE_TIMEOUT_S,
                reuse_address=True,
            )
            port = server.sockets[0].getsockname()[1]
            self._publish(_advertised_host(self.config), port, fingerprint)
            assert self.sandbox is not None
            pidfd = os.pidfd_open(self.sandbox.pid)
            loop.add_reader(pidfd, lambda: _settle(exited, self.sandbox_code()))
            try:
                code: int = await exited
            finally:
                loop.remove_reader(pidfd)
                os.close(pidfd)
            server.close()
            # Hubs keep idle connections open: end them without waiting for goodbyes.
            for client in list(self.clients):
                client.transport.abort()
            return code
        finally:
            self._cleanup()

    def spawn_sandbox(self) -> None:
        os.makedirs(self.sock_dir, mode=0o700, exist_ok=True)
        os.chmod(self.sock_dir, 0o700)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.sock_path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(self.sock_path)
            os.chmod(self.sock_path, 0o600)
            listener.listen(1024)
            moved = listener.fileno() != AGENT_FD
            if moved:
                os.dup2(listener.fileno(), AGENT_FD)
            try:
                self.sandbox = subprocess.Popen(
                    self.config["argv"],
                    pass_fds=(AGENT_FD,),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                    cwd="/",
                    umask=0o022,
                    env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"},
                )
            finally:
                if moved:
                    os.close(AGENT_FD)
        finally:
            listener.close()

    async def _wait_ready(self) -> None:
        assert self.sandbox is not None
        deadline = time.monotonic() + float(self.config.get("start_timeout_s", 30))
        while time.monotonic() < deadline:
            if self.sandbox.poll() is not None:
                raise SystemExit(f"the sandbox exited during start ({self.sandbox.returncode})")
            if await asyncio.to_thread(_ping, self.sock_path):
                return
            await asyncio.sleep(0.02)
        raise SystemExit("the agent did not answer in time")

    def sandbox_code(self) -> int:
        assert self.sandbox is not None
        return self.sandbox.wait()

    def _publish(self, host: str, port: int, fingerprint: str) -> None:
        record = {
            "host": host,
            "port": port,
            "fingerprint": fingerprint,
            "node": socket.gethostname(),
            "job_id": os.environ.get("SLURM_JOB_ID", ""),
            "nonce": self.config["nonce"],
        }
        path = os.path.join(self.rundir, "address.json")
        tmp = f"{path}.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(record, f)
        os.replace(tmp, path)

    def _cleanup(self) -> None:
        if self.sandbox is not None and self.sandbox.poll() is None:
            # Everything below the launcher (bubblewrap's monitor): the sandbox makes a
            # session of its own, and the death of its namespace's first process ends what
            # the project started. The monitor then reaps that process and ends; killed
            # at the same time, it could leave it unreaped to the node's init.
            for pid in descendants_of(self.sandbox.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            try:
                self.sandbox.wait(timeout=MONITOR_END_S)
            except subprocess.TimeoutExpired:
                self.sandbox.kill()
                self.sandbox.wait()
        path = os.path.join(self.rundir, "address.json")
        with contextlib.suppress(OSError), open(path, encoding="utf-8") as f:
            if json.load(f).get("nonce") == self.config["nonce"]:
                os.unlink(path)
        with contextlib.suppress(OSError):
            os.unlink(self.sock_path)
        with contextlib.suppress(OSError):
            os.rmdir(self.sock_dir)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One hub connection: after the token, requests one after another, each on a
        connection of its own to the agent, until the hub hangs up or leaves it idle."""
        try:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT_S):
                authorised = await self._authorised(reader)
            if not authorised:
                return
            self.clients.add(writer)
            while await self._relay_one(reader, writer):
                pass
        except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            self.clients.discard(writer)
            writer.close()
            # A hub that vanished never says goodbye: do not wait for it long.
            with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
                async with asyncio.timeout(HANDSHAKE_TIMEOUT_S):
                    await writer.wait_closed()

    async def _relay_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Pass one request to the agent and its reply back; False when the connection is
        done (idle too long, or the hub hung up before or during the request)."""
        try:
            async with asyncio.timeout(IDLE_CONNECTION_S):
                head = await reader.readexactly(FRAME.size)
        except (TimeoutError, asyncio.IncompleteReadError):
            return False
        request, size = await _frame(reader, head)
        agent_reader, agent_writer = await asyncio.open_unix_connection(self.sock_path)
        try:
            agent_writer.write(request)
            await _copy(reader, agent_writer, size)
            # While the agent works the hub sends nothing: a read that ends means it hung
            # up, and the agent is told so (it stops a command nobody waits for).
            hung_up = asyncio.ensure_future(reader.read(1))
            replied = asyncio.ensure_future(_frame(agent_reader))
            try:
                await asyncio.wait({hung_up, replied}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                hung_up.cancel()
                replied.cancel()
                # Both really over before the streams are read again.
                await asyncio.gather(hung_up, replied, return_exceptions=True)
            if not hung_up.cancelled() or replied.cancelled():
                return False  # it hung up, or sent something out of turn: done
            try:
                reply, reply_size = replied.result()
            except (OSError, ValueError, asyncio.IncompleteReadError):
                # The request reached the agent, which failed it: say so, rather than
                # hang up, which the hub would take for a connection closed while idle.
                failed = {"code": "EAGENT", "message": "the project's agent failed the request"}
                writer.write(_encode({"ok": False, "error": failed}))
                await writer.drain()
                return False
            writer.write(reply)
            await _copy(agent_reader, writer, reply_size)
            return True
        finally:
            agent_writer.close()

    async def _authorised(self, reader: asyncio.StreamReader) -> bool:
        (length,) = FRAME.unpack(await reader.readexactly(FRAME.size))
        if length > MAX_AUTH_FRAME:
            return False
        try:
            token = json.loads(await reader.readexactly(length)).get("token")
            presented = hashlib.sha256(bytes.fromhex(token)).digest()
        except (ValueError, AttributeError, TypeError):
            return False
        return hmac.compare_digest(presented, self.digest)


async def _frame(reader: asyncio.StreamReader, head: bytes = b"") -> tuple[bytes, int]:
    """A whole header frame as it came (length and JSON), and the payload size it
    announces; `head` is its length when already read."""
    head = head or await reader.readexactly(FRAME.size)
    (length,) = FRAME.unpack(head)
    if length > MAX_HEADER:
        raise ValueError("header too large")
    data = await reader.readexactly(length)
    size = json.loads(data).get("size", 0)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ValueError("bad payload size")
    return head + data, size


def _encode(header: dict[str, Any]) -> bytes:
    data = json.dumps(header).encode()
    return FRAME.pack(len(data)) + data


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, size: int) -> None:
    while size > 0:
        data = await reader.read(min(size, CHUNK))
        if not data:
            raise asyncio.IncompleteReadError(b"", size)
        writer.write(data)
        await writer.drain()
        size -= len(data)


def _settle(future: asyncio.Future[int], code: int) -> None:
    if not future.done():
        future.set_result(code)


def _ping(sock_path: str) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(2.0)
            conn.connect(sock_path)
            send_frame(conn, {"op": "ping"})
            return recv_frame(conn).get("ok") is True
    except (OSError, EOFError, ValueError):
        return False


def _make_tls() -> tuple[ssl.SSLContext, str]:
    """A fresh key and self-signed certificate, loaded and then deleted from disk; returns
    the server context and the certificate's SHA-256 fingerprint (hex)."""
    with tempfile.TemporaryDirectory(prefix="calchub-tls-") as folder:
        key, cert = os.path.join(folder, "key.pem"), os.path.join(folder, "cert.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-subj", "/CN=calchub-project", "-days", "3650",
             "-keyout", key, "-out", cert],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        context.num_tickets = 0  # hubs never resume a session: do not make tickets
        context.load_cert_chain(cert, key)
        with open(cert, encoding="ascii") as f:
            der = ssl.PEM_cert_to_DER_cert(f.read())
    return context, hashlib.sha256(der).hexdigest()


def _advertised_host(config: dict[str, Any]) -> str:
    """The address hubs reach this node at: the one its routing picks towards a hub."""
    if config.get("advertise"):
        return str(config["advertise"])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((config["route_to"], 9))  # no packet is sent for a UDP connect
        return str(probe.getsockname()[0])
