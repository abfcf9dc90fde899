"""A TCP proxy in front of the test Neo4j server that can lose the server on purpose, for fault tests.

``BoltProxy`` listens on 127.0.0.1 (a free port) and forwards every connection to the server's bolt port, one
thread per direction. A command pointed at ``proxy.uri`` talks to the real server until the test cuts:

- ``cut()``: every open connection is shut down and new ones are refused (the listening socket is closed), as
  when the server dies; ``restore()`` listens again on the same port, as when it is back;
- ``cut_after_bytes(n)``: cut once ``n`` more bytes from clients would be forwarded (the data that crosses the
  mark never reaches the server);
- ``cut_on_message(k)``: cut instead of forwarding the data that holds the ``k``-th Bolt message sent by
  clients from now on (counted over all connections; the handshake is not a message);
- ``cut_on(text, nth)``: cut instead of forwarding the ``nth`` client data (from now on) that holds ``text``,
  e.g. a word of one Cypher statement: the server never sees that statement, nor anything after it.

``cut_event`` is set when a cut happens. Loopback only; nothing here knows Cypher or the driver.

>>> with BoltProxy(7687) as proxy:                       # doctest: +SKIP
...     proxy.cut_on(b"MaskingExperiment")
...     run_the_command(uri=proxy.uri)
"""

from __future__ import annotations

import selectors
import socket
import threading
from collections.abc import Callable

HANDSHAKE = 20  # magic preamble + four proposed versions
MANIFEST_V1 = b"\x00\x00\x01\xff"


class _ClientStream:
    """Counts the Bolt messages in what one client sends: the handshake, then chunks (2-byte size, 0: end of a
    message). With the manifest handshake (the server answers 00 00 01 FF), the client then sends its chosen
    version (4 bytes) and its capabilities (a varint) before its first message."""

    def __init__(self) -> None:
        self.preamble = HANDSHAKE
        self.manifest = threading.Event()  # set by the server pump when the server answers with a manifest
        self.choice: int | None = None     # bytes of the manifest choice still to come (None: not started)
        self.varint = False
        self.size: list[int] = []          # bytes of a chunk header read so far
        self.body = 0                      # bytes of the current chunk still to come
        self.in_message = False

    def feed(self, data: bytes) -> int:
        """The messages that ``data`` starts (a message counts when its first chunk starts)."""
        started = 0
        for byte in data:
            if self.preamble:
                self.preamble -= 1
                continue
            if self.manifest.is_set() and self.choice is None:
                self.choice = 4
            if self.choice:
                self.choice -= 1
                if self.choice == 0:
                    self.varint = True
                continue
            if self.varint:
                self.varint = bool(byte & 0x80)
                continue
            if self.body:
                self.body -= 1
                continue
            self.size.append(byte)
            if len(self.size) < 2:
                continue
            size = (self.size[0] << 8) | self.size[1]
            self.size = []
            if size == 0:
                self.in_message = False
                continue
            if not self.in_message:
                self.in_message = True
                started += 1
            self.body = size
        return started


class BoltProxy:
    """127.0.0.1:<free port> -> ``host:port``; see the module for the faults it injects."""

    def __init__(self, port: int, host: str = "127.0.0.1"):
        self.target = (host, port)
        self.cut_event = threading.Event()
        self.client_bytes = 0      # forwarded from clients, all connections
        self.client_messages = 0   # Bolt messages started by clients, all connections
        self.connections = 0       # accepted so far
        self._lock = threading.Lock()
        self._trigger: Callable[[bytes, int, int], bool] | None = None
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._listener: socket.socket | None = None
        self._port = 0
        self._closing = False
        self._accepting: threading.Thread | None = None
        self._listen()

    # ------------------------------------------------------------------ life cycle

    @property
    def port(self) -> int:
        return self._port

    @property
    def uri(self) -> str:
        return f"bolt://127.0.0.1:{self._port}"

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self._port))
        listener.listen(64)
        self._port = listener.getsockname()[1]
        self._listener = listener
        self._accepting = threading.Thread(target=self._accept, args=(listener,), name="bolt-proxy", daemon=True)
        self._accepting.start()

    def __enter__(self) -> BoltProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stops listening and closes every connection."""
        self._closing = True
        self._drop_all()

    def restore(self) -> None:
        """Listens again on the same port after a cut (the server is back); forgets any pending fault."""
        with self._lock:
            self._trigger = None
        self.cut_event.clear()
        if self._listener is None:
            self._listen()

    # ------------------------------------------------------------------ faults

    def cut(self) -> None:
        """Shuts every open connection down and refuses new ones, as a dead server would."""
        with self._lock:
            self._trigger = None
        self._drop_all()
        self.cut_event.set()

    def cut_after_bytes(self, n: int) -> None:
        """Cut once more than ``n`` bytes from clients (counted from now) would be forwarded."""
        limit = self.client_bytes + n
        self._arm(lambda data, total, _: total + len(data) > limit)

    def cut_on_message(self, k: int) -> None:
        """Cut instead of forwarding the client data that starts the ``k``-th Bolt message from now on."""
        limit = self.client_messages + k
        self._arm(lambda _data, _total, messages: messages >= limit)

    def cut_on(self, text: bytes, nth: int = 1) -> None:
        """Cut instead of forwarding the ``nth`` client data that holds ``text`` (e.g. a word of a Cypher
        statement); the earlier ones go through."""
        seen = [0]

        def trigger(data: bytes, _total: int, _messages: int) -> bool:
            seen[0] += text in data
            return seen[0] >= nth

        self._arm(trigger)

    def _arm(self, trigger: Callable[[bytes, int, int], bool]) -> None:
        with self._lock:
            self._trigger = trigger
        self.cut_event.clear()

    # ------------------------------------------------------------------ forwarding

    def _drop_all(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            pairs, self._pairs = self._pairs, []
        if listener is not None:
            listener.close()
        if self._accepting is not None and self._accepting is not threading.current_thread():
            self._accepting.join(timeout=5)
        for pair in pairs:
            for sock in pair:
                _shut(sock)

    def _accept(self, listener: socket.socket) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(listener, selectors.EVENT_READ)
            while self._listener is listener and not self._closing:
                if not selector.select(timeout=0.02):
                    continue
                try:
                    client, _ = listener.accept()
                except OSError:
                    return
                try:
                    server = socket.create_connection(self.target, timeout=5)
                    server.settimeout(None)
                except OSError:
                    _shut(client)
                    continue
                for sock in (client, server):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                stream = _ClientStream()
                with self._lock:
                    if self._listener is not listener:  # cut meanwhile
                        _shut(client)
                        _shut(server)
                        return
                    self._pairs.append((client, server))
                    self.connections += 1
                threading.Thread(target=self._pump_client, args=(client, server, stream), daemon=True).start()
                threading.Thread(target=self._pump_server, args=(server, client, stream), daemon=True).start()

    def _pump_client(self, client: socket.socket, server: socket.socket, stream: _ClientStream) -> None:
        while True:
            try:
                data = client.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            with self._lock:
                started = stream.feed(data)
                trigger = self._trigger
                fire = trigger is not None and trigger(data, self.client_bytes, self.client_messages + started)
                if not fire:
                    self.client_bytes += len(data)
                    self.client_messages += started
            if fire:
                self.cut()
                return
            try:
                server.sendall(data)
            except OSError:
                break
        _shut(server)
        _shut(client)

    def _pass_answer(self, data: bytes) -> bool:
        """Whether the server's ``data`` goes on to the client; False drops it and the connection (a subclass
        loses answers this way)."""
        return True

    def _pump_server(self, server: socket.socket, client: socket.socket, stream: _ClientStream) -> None:
        first = True
        while True:
            try:
                data = server.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            if first:
                first = False
                if data[:4] == MANIFEST_V1:
                    stream.manifest.set()
            if not self._pass_answer(data):
                break
            try:
                client.sendall(data)
            except OSError:
                break
        _shut(client)
        _shut(server)


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
