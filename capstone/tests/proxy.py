"""A TCP proxy of the tests' own, between the service and a real server (PostgreSQL, Redis),
to break the connection as networks and servers break:

- `cut()`: every open connection is closed and new ones are refused, as when the server
  restarts or the network drops; `restore()` opens it again;
- `stall()`: connections are taken and held, and nothing goes through either way, as when
  the server is paused or a network path goes dark; `resume()` lets everything through.
"""

import contextlib
import socket
import threading
from urllib.parse import urlsplit, urlunsplit


class Proxy:
    """Forwards 127.0.0.1:<port> to a server; cut, restored, stalled and resumed at will."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self.sockets: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.listener: socket.socket | None = None
        self.flowing = threading.Event()  # cleared while stalled
        self.flowing.set()
        self.restore()

    def stall(self) -> None:
        self.flowing.clear()

    def resume(self) -> None:
        self.flowing.set()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self.port = listener.getsockname()[1]
        self.listener = listener
        threading.Thread(target=self.accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        assert self.listener is not None
        close(self.listener)  # shutdown() first: close() alone would not wake accept()
        with self.lock:
            for sock in self.sockets:
                close(sock)
            self.sockets.clear()

    def accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # cut
                return
            try:
                server = socket.create_connection(self.target)
            except OSError:  # the server itself is away
                close(client)
                continue
            with self.lock:
                self.sockets |= {client, server}
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self.pump, args=(source, sink), daemon=True).start()

    def pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                self.flowing.wait()  # held here while stalled: taken, and not passed on
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self.lock:
                for sock in (source, sink):
                    close(sock)
                    self.sockets.discard(sock)


def close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # the other side may have closed it already
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def through(proxy: Proxy, url: str) -> str:
    """The same URL, pointed at the proxy."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    netloc[-1] = f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc="@".join(netloc)))


def proxy_for(url: str, default_port: int) -> Proxy:
    parts = urlsplit(url)
    return Proxy((parts.hostname or "127.0.0.1", parts.port or default_port))
