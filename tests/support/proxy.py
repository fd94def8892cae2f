"""A loopback TCP proxy that can cut the line, for network-partition tests.

    proxy = TcpProxy(("127.0.0.1", shop.port)).start()
    gateway_shop_url = f"http://127.0.0.1:{proxy.port}/api/v1"
    proxy.set_mode("refuse")      # nothing listens: connect() gets ECONNREFUSED
    proxy.set_mode("blackhole")   # connects succeed, bytes vanish, no answer ever comes
    proxy.set_mode("pass")        # a normal line again
    proxy.stop()

Switching away from ``pass`` resets every open connection, as a partition
does; ``blackhole`` then swallows whatever is sent on new ones. ``refuse``
closes the listening socket and ``pass`` binds the same port again.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
from typing import Literal

Mode = Literal["pass", "refuse", "blackhole"]
_CHUNK = 65536
_TICK = 0.05  # seconds; how quickly pumps notice a mode change or stop()


def _reset(sock: socket.socket) -> None:
    """Close with RST instead of FIN, as a dropped line looks to the peer."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class TcpProxy:
    """Forwards loopback connections to ``upstream`` unless told otherwise.

    >>> TcpProxy(("127.0.0.1", 9)).mode
    'pass'
    """

    def __init__(self, upstream: tuple[str, int], port: int = 0) -> None:
        self.upstream = upstream
        self.port = port
        self._mode: Mode = "pass"
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self.accepted = 0

    @property
    def mode(self) -> Mode:
        with self._lock:
            return self._mode

    def start(self) -> TcpProxy:
        self._listen()
        return self

    def set_mode(self, mode: Mode) -> None:
        with self._lock:
            previous, self._mode = self._mode, mode
            open_sockets = list(self._sockets) if mode != "pass" else []
            self._sockets.difference_update(open_sockets)
        for sock in open_sockets:
            _reset(sock)
        if mode == "refuse" and previous != "refuse":
            self._close_listener()
        elif mode != "refuse" and previous == "refuse":
            self._listen()

    def stop(self) -> None:
        self._stopping.set()
        self._close_listener()
        with self._lock:
            open_sockets = list(self._sockets)
            self._sockets.clear()
        for sock in open_sockets:
            _reset(sock)
        for thread in self._threads:
            thread.join(timeout=2.0)

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ internals

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._accept_thread = thread
        self._spawn(thread)

    def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.close()
        if self._accept_thread is not None:
            self._accept_thread.join(timeout=2.0)
            self._accept_thread = None

    def _spawn(self, thread: threading.Thread) -> None:
        self._threads = [t for t in self._threads if t.is_alive()]
        self._threads.append(thread)
        thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                ready, _, _ = select.select([listener], [], [], _TICK)
                if not ready:
                    continue
                client, _ = listener.accept()
            except (OSError, ValueError):  # closed under us: refuse mode or stop()
                return
            self.accepted += 1
            self._spawn(threading.Thread(target=self._serve, args=(client,), daemon=True))

    def _track(self, *socks: socket.socket) -> None:
        with self._lock:
            self._sockets.update(socks)

    def _serve(self, client: socket.socket) -> None:
        self._track(client)
        if self.mode == "blackhole":
            self._swallow(client)
            return
        try:
            upstream = socket.create_connection(self.upstream, timeout=2.0)
        except OSError:
            _reset(client)
            return
        self._track(upstream)
        self._pump(client, upstream)

    def _swallow(self, client: socket.socket) -> None:
        """Read and drop everything until the peer or a mode change closes the socket."""
        with contextlib.suppress(OSError, ValueError):
            while not self._stopping.is_set():
                ready, _, _ = select.select([client], [], [], _TICK)
                if ready and not client.recv(_CHUNK):
                    break
        _reset(client)

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        with contextlib.suppress(OSError, ValueError):
            while not self._stopping.is_set():
                ready, _, _ = select.select([a, b], [], [], _TICK)
                for sock in ready:
                    data = sock.recv(_CHUNK)
                    if not data:
                        raise OSError("closed")
                    peers[sock].sendall(data)
        with self._lock:
            cut = a not in self._sockets  # set_mode() already reset both
            self._sockets.discard(a)
            self._sockets.discard(b)
        if not cut:
            # A plain close (FIN): an RST could destroy an answer still in flight.
            for sock in (a, b):
                with contextlib.suppress(OSError):
                    sock.close()
