using System.Net;
using System.Net.Sockets;
using System.Text;
using Broker.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Broker.Tests.Hardening;

/// <summary>
/// What an idle connection costs (issue 8): a connection that CONNECTed and then says nothing must hold no receive or
/// send buffer. Measured as the growth of the process's managed heap (the broker runs in it) per connection, with
/// bare sockets as clients (about 1.5 KB each on the client side). Kestrel's block pool, which keeps what the
/// handshakes used for a while, makes the WebSocket figure vary (24-32 KiB measured), so the bounds only catch a
/// return of what idle connections used to hold: two 16 KiB arrays per WebSocket connection (then ~60 KiB in all) and
/// a 64-item outbound array per connection (a TCP one then ~16 KiB; ~12.8 KiB now). Runs alone, so other tests'
/// allocations do not blur the measurement.
/// </summary>
[Collection(RunAloneGroup.Name)]
public sealed class IdleConnectionMemoryTests(ITestOutputHelper output)
{
    private const int Connections = 1000;

    [Theory]
    [InlineData(Transport.Tcp, 15)]
    [InlineData(Transport.WebSocket, 45)]
    public async Task An_idle_connection_holds_no_buffers(Transport transport, int boundKib)
    {
        await using var server = await BrokerServer.StartAsync("Broker:Limits:MaxConnectionsPerAddress=0");

        // A first round warms up the JIT and the pools; the baseline is taken after it, with nothing connected.
        CloseAll(await OpenIdleAsync(server, transport, 50));
        await server.WaitForNoConnectionsAsync();
        var baseline = Memory.Settled();

        var sockets = await OpenIdleAsync(server, transport, Connections);
        await server.WaitForConnectionCountAsync(Connections);
        var idle = Memory.Settled();
        CloseAll(sockets);
        await server.WaitForNoConnectionsAsync();

        var perConnection = (idle - baseline) / Connections;
        var report = $"{transport}: {Connections} idle connections, managed heap {Memory.Mb(baseline)} -> {Memory.Mb(idle)}, "
            + $"{perConnection / 1024.0:0.0} KiB per connection (bound {boundKib} KiB)";
        output.WriteLine(report);
        Assert.True(perConnection <= boundKib * 1024L, report);
    }

    private static async Task<Socket[]> OpenIdleAsync(BrokerServer server, Transport transport, int count)
    {
        var sockets = new Socket[count];
        for (var i = 0; i < count; i += 50)
        {
            await Task.WhenAll(Enumerable.Range(i, Math.Min(50, count - i)).Select(async j => sockets[j] = await OpenIdleAsync(server, transport)));
        }

        return sockets;
    }

    // CONNECT with heart-beats off, read CONNECTED, then keep only the socket.
    private static async Task<Socket> OpenIdleAsync(BrokerServer server, Transport transport)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        var connect = "CONNECT\naccept-version:1.2\nhost:/\nheart-beat:0,0\n\n\0"u8.ToArray();
        if (transport == Transport.Tcp)
        {
            await socket.ConnectAsync(IPAddress.Loopback, server.TcpPort);
            await socket.SendAsync(connect);
        }
        else
        {
            await socket.ConnectAsync(IPAddress.Loopback, server.WebSocketPort);
            var upgrade = $"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{server.WebSocketPort}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: v12.stomp\r\n\r\n";
            await socket.SendAsync(Encoding.ASCII.GetBytes(upgrade));

            // One masked text message (a zero mask leaves the payload as it is).
            byte[] frame = [0x81, (byte)(0x80 | connect.Length), 0, 0, 0, 0, .. connect];
            await socket.SendAsync(frame);
        }

        // Whatever the framing around it, CONNECTED ends with a NUL.
        var received = new List<byte>();
        var buffer = new byte[4096];
        using var timeout = new CancellationTokenSource(StompTestClient.DefaultTimeout);
        while (true)
        {
            var text = Encoding.ASCII.GetString([.. received]);
            var start = text.IndexOf("CONNECTED\n", StringComparison.Ordinal);
            if (start >= 0 && text.IndexOf('\0', start) > 0)
            {
                return socket;
            }

            var read = await socket.ReceiveAsync(buffer, timeout.Token);
            Assert.True(read > 0, $"the connection closed before CONNECTED; received: {text}");
            received.AddRange(buffer.AsSpan(0, read));
        }
    }

    private static void CloseAll(Socket[] sockets)
    {
        foreach (var socket in sockets)
        {
            socket.Dispose();
        }
    }
}
