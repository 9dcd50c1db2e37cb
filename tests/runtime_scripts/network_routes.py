"""Reaches for the network by every route a script, or a library it calls, might take: each must fail at
once under dllint confirm, while connections to this machine still work. Writes what happened (the
exception's name, or "connected", and the seconds it took) as JSON to the file named by argv[1]."""
import _socket
import json
import socket
import subprocess
import sys
import time

UNROUTABLE = ("192.0.2.1", 80)  # TEST-NET-1: a connection there hangs until its timeout
results = {}


def attempt(name, action):
    started = time.monotonic()
    try:
        action()
        outcome = "connected"
    except Exception as error:
        outcome = type(error).__name__
    results[name] = [outcome, round(time.monotonic() - started, 3)]


def tcp_connect():
    with socket.socket() as connection:
        connection.settimeout(5)
        connection.connect(UNROUTABLE)


def raw_socket_connect():
    connection = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
    connection.settimeout(5)
    try:
        connection.connect(UNROUTABLE)
    finally:
        connection.close()


def udp_sendto():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as datagram:
        datagram.sendto(b"ping", ("192.0.2.1", 53))


def raw_udp_sendto():
    datagram = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        datagram.sendto(b"ping", 0, ("192.0.2.1", 53))
    finally:
        datagram.close()


def udp_sendmsg():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as datagram:
        datagram.sendmsg([b"ping"], [], 0, ("192.0.2.1", 53))


def local_connection():
    with socket.socket() as server, socket.socket() as client:
        server.bind(("127.0.0.1", 0))
        server.listen()
        client.connect(server.getsockname())


attempt("tcp_connect", tcp_connect)
attempt("raw_socket_connect", raw_socket_connect)
attempt("udp_sendto", udp_sendto)
attempt("raw_udp_sendto", raw_udp_sendto)
attempt("udp_sendmsg", udp_sendmsg)
attempt("getaddrinfo", lambda: socket.getaddrinfo("example.com", 443))
attempt("gethostbyname", lambda: socket.gethostbyname("example.com"))
attempt("raw_gethostbyname", lambda: _socket.gethostbyname("example.com"))
attempt("local_connection", local_connection)
child = subprocess.run([sys.executable, "-c", "import os; print(os.environ.get('https_proxy', ''))"],
                       capture_output=True, text=True)
results["subprocess_https_proxy"] = child.stdout.strip()
with open(sys.argv[1], "w") as handle:
    json.dump(results, handle)
