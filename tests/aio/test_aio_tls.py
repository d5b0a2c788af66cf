"""TLS over atcp (asyncio's TLS layer on an atcp transport), with a certificate authority
and a server certificate for "localhost" made when the tests start."""

from __future__ import annotations

import asyncio
import datetime
import ssl

import pytest

import atcp

pytestmark = pytest.mark.asyncio

x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402


def _name(common_name: str):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """(server context, client context trusting the test CA); names: localhost, 127.0.0.1."""
    import ipaddress
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (x509.CertificateBuilder()
               .subject_name(_name("atcp test CA")).issuer_name(_name("atcp test CA"))
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                            crl_sign=True, content_commitment=False,
                                            key_encipherment=False, data_encipherment=False,
                                            key_agreement=False, encipher_only=False,
                                            decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                              critical=False)
               .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(_name("localhost")).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    directory = tmp_path_factory.mktemp("pki")
    cert_file = directory / "server.pem"
    key_file = directory / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(
        cadata=ca_cert.public_bytes(serialization.Encoding.PEM).decode())
    return server, client


async def echo(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def test_tls_echo_streams(pki):
    server_ctx, client_ctx = pki
    async with asyncio.timeout(10):
        server = await atcp.start_server(echo, "127.0.0.1", 0, ssl=server_ctx)
        async with server:
            port = server.addresses[0][1]
            reader, writer = await atcp.open_connection(
                "127.0.0.1", port, ssl=client_ctx, server_hostname="localhost")
            assert writer.get_extra_info("peercert")["subject"] == (
                (("commonName", "localhost"),),)
            assert writer.get_extra_info("ssl_object").version().startswith("TLS")
            # The TLS transport passes atcp's own information through.
            assert writer.get_extra_info("tcp_info").state == "ESTABLISHED"
            payload = bytes(range(256)) * 1024          # several TLS records
            writer.write(payload)
            await writer.drain()
            assert await reader.readexactly(len(payload)) == payload
            writer.close()
            await writer.wait_closed()


async def test_tls_protocol_api_verifies_ip_address(pki):
    """create_connection with ssl: connection_made comes once, with the TLS transport, and
    the certificate is checked against the host when no server_hostname is given."""
    server_ctx, client_ctx = pki
    made = []

    class Client(asyncio.Protocol):
        def __init__(self):
            self.received = asyncio.get_running_loop().create_future()

        def connection_made(self, transport):
            made.append(transport)

        def data_received(self, data):
            if not self.received.done():
                self.received.set_result(data)

    async with asyncio.timeout(10):
        server = await atcp.start_server(echo, "127.0.0.1", 0, ssl=server_ctx)
        async with server:
            port = server.addresses[0][1]
            transport, protocol = await atcp.create_connection(Client, "127.0.0.1", port,
                                                               ssl=client_ctx)
            assert made == [transport]
            assert not isinstance(transport, atcp.Transport)   # the TLS transport
            assert transport.get_extra_info("peercert") is not None
            transport.write(b"ping")
            assert await protocol.received == b"ping"
            transport.close()


async def test_tls_wrong_hostname_fails_clearly(pki):
    server_ctx, client_ctx = pki
    async with asyncio.timeout(10):
        server = await atcp.start_server(echo, "127.0.0.1", 0, ssl=server_ctx)
        async with server:
            port = server.addresses[0][1]
            with pytest.raises(ssl.SSLCertVerificationError) as caught:
                await atcp.open_connection("127.0.0.1", port, ssl=client_ctx,
                                           server_hostname="wrong.example")
            assert "wrong.example" in str(caught.value)
            # The server is unharmed and serves the next, correct client.
            reader, writer = await atcp.open_connection("127.0.0.1", port, ssl=client_ctx,
                                                        server_hostname="localhost")
            writer.write(b"after")
            assert await reader.readexactly(5) == b"after"
            writer.close()
            await writer.wait_closed()


async def test_tls_untrusted_certificate_fails(pki):
    server_ctx, _ = pki
    async with asyncio.timeout(10):
        server = await atcp.start_server(echo, "127.0.0.1", 0, ssl=server_ctx)
        async with server:
            port = server.addresses[0][1]
            with pytest.raises(ssl.SSLCertVerificationError):
                await atcp.open_connection("127.0.0.1", port, ssl=True,
                                           server_hostname="localhost")


async def test_tls_argument_checks(pki):
    server_ctx, _ = pki
    with pytest.raises(ValueError, match="server_hostname is only meaningful with ssl"):
        await atcp.open_connection("127.0.0.1", 9, server_hostname="x")
    with pytest.raises(ValueError, match="ssl_handshake_timeout is only meaningful"):
        await atcp.open_connection("127.0.0.1", 9, ssl_handshake_timeout=1.0)
    with pytest.raises(TypeError, match="ssl.SSLContext"):
        await atcp.start_server(echo, "127.0.0.1", 0, ssl=True)
    with pytest.raises(ValueError, match="positive"):
        await atcp.start_server(echo, "127.0.0.1", 0, ssl=server_ctx, ssl_handshake_timeout=0)


async def test_tls_handshake_timeout_against_a_silent_server():
    """A server that accepts the atcp connection but never speaks TLS: the handshake
    timeout ends the attempt with asyncio's error, and the connection is reset."""
    async def silent(reader, writer):
        await reader.read()
        writer.close()

    async with asyncio.timeout(10):
        server = await atcp.start_server(silent, "127.0.0.1", 0)
        async with server:
            port = server.addresses[0][1]
            with pytest.raises(ConnectionAbortedError, match="handshake"):
                await atcp.open_connection("127.0.0.1", port, ssl=True,
                                           server_hostname="localhost",
                                           ssl_handshake_timeout=0.3)


@pytest.mark.default_loop_only   # uvloop's loop.start_tls takes only uvloop's own transports
async def test_starttls_upgrade_of_an_open_connection(pki):
    """STARTTLS: a connection that began in the clear upgrades with asyncio's own
    ``StreamWriter.start_tls``, which calls ``loop.start_tls`` on the atcp transport."""
    server_ctx, client_ctx = pki

    async def handler(reader, writer):
        assert await reader.readline() == b"STARTTLS\n"
        writer.write(b"GO\n")
        await writer.start_tls(server_ctx)
        data = await reader.read(100)
        writer.write(data.upper())
        await writer.drain()
        writer.close()

    async with asyncio.timeout(10):
        server = await atcp.start_server(handler, "127.0.0.1", 0)
        async with server:
            port = server.addresses[0][1]
            reader, writer = await atcp.open_connection("127.0.0.1", port)
            writer.write(b"STARTTLS\n")
            assert await reader.readline() == b"GO\n"
            assert writer.get_extra_info("peercert") is None
            await writer.start_tls(client_ctx, server_hostname="localhost")
            assert writer.get_extra_info("peercert") is not None
            writer.write(b"secret")
            assert await reader.read(100) == b"SECRET"
            writer.close()


async def test_buffered_protocol_gets_everything_through_small_buffers():
    """What the TLS layer relies on: the transport feeds an `asyncio.BufferedProtocol`
    through the buffers it lends, however small, in order."""
    class Small(asyncio.BufferedProtocol):
        def __init__(self):
            self.buf = bytearray(7)
            self.got = bytearray()
            self.eof = asyncio.get_running_loop().create_future()

        def get_buffer(self, sizehint):
            return self.buf

        def buffer_updated(self, nbytes):
            self.got += self.buf[:nbytes]

        def eof_received(self):
            self.eof.set_result(None)

    async def send_and_close(reader, writer):
        writer.write(bytes(range(256)) * 40)
        writer.write_eof()
        await reader.read()
        writer.close()

    async with asyncio.timeout(10):
        server = await atcp.start_server(send_and_close, "127.0.0.1", 0)
        async with server:
            transport, protocol = await atcp.create_connection(
                Small, "127.0.0.1", server.addresses[0][1])
            await protocol.eof
            assert bytes(protocol.got) == bytes(range(256)) * 40
            transport.close()
