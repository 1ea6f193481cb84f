using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using Broker.Tests.Infrastructure;
using Broker.Transports.WebSockets;

namespace Broker.Tests;

/// <summary>
/// The upgrade taken on the connection (WebSocketConnectionUpgrade) and the fallback to ASP.NET Core's for everything
/// else: both must end in the same working STOMP session.
/// </summary>
public sealed class WebSocketUpgradeTests(BrokerFixture broker) : IClassFixture<BrokerFixture>
{
    private BrokerServer Server => broker.Server;

    [Theory]
    [InlineData(0)] // the whole request in one write: taken on the connection
    [InlineData(40)] // the request split over two writes: left to the HTTP pipeline
    public async Task An_upgrade_whole_or_split_over_writes_ends_in_a_working_session(int splitAt)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync("127.0.0.1", Server.WebSocketPort);
        var stream = tcp.GetStream();
        var request = Encoding.ASCII.GetBytes(
            $"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{Server.WebSocketPort}\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n" +
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: v11.stomp, v12.stomp\r\n\r\n");
        if (splitAt > 0)
        {
            await stream.WriteAsync(request.AsMemory(0, splitAt));
            await stream.FlushAsync();
            await Task.Delay(200);
            await stream.WriteAsync(request.AsMemory(splitAt));
        }
        else
        {
            await stream.WriteAsync(request);
        }

        var head = await ReadHeadAsync(stream);
        Assert.StartsWith("HTTP/1.1 101", head, StringComparison.Ordinal);
        Assert.Contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", head, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("Sec-WebSocket-Protocol: v12.stomp", head, StringComparison.OrdinalIgnoreCase);

        using var socket = WebSocket.CreateFromStream(stream, new WebSocketCreationOptions { IsServer = false, SubProtocol = "v12.stomp" });
        await socket.SendAsync("CONNECT\naccept-version:1.2\nhost:/\n\n\0"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        var buffer = new byte[4096];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var received = await socket.ReceiveAsync(buffer, timeout.Token);
        Assert.StartsWith("CONNECTED\n", Encoding.UTF8.GetString(buffer, 0, received.Count), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_page_on_the_websocket_port_is_still_served_over_http()
    {
        using var http = new HttpClient();
        var response = await http.GetAsync(new Uri($"http://127.0.0.1:{Server.WebSocketPort}/health/live"));
        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
    }

    // Both no-context-takeover parameters in every answer: each message is compressed on its own, so an idle
    // connection holds no zlib state (the server may require client_no_context_takeover, RFC 7692 7.1.1.2).
    [Theory]
    [InlineData("permessage-deflate", "permessage-deflate; server_no_context_takeover; client_no_context_takeover", 15)]
    [InlineData("permessage-deflate; client_max_window_bits", "permessage-deflate; server_no_context_takeover; client_no_context_takeover", 15)]
    [InlineData("permessage-deflate; client_max_window_bits=10; client_no_context_takeover",
        "permessage-deflate; server_no_context_takeover; client_max_window_bits=10; client_no_context_takeover", 15)]
    [InlineData("permessage-deflate; server_max_window_bits=12", "permessage-deflate; server_no_context_takeover; server_max_window_bits=12; client_no_context_takeover", 12)]
    [InlineData("permessage-deflate; server_no_context_takeover", "permessage-deflate; server_no_context_takeover; client_no_context_takeover", 15)]
    [InlineData("permessage-deflate; x-unknown, permessage-deflate", "permessage-deflate; server_no_context_takeover; client_no_context_takeover", 15)] // the first acceptable offer
    [InlineData("x-webkit-deflate-frame", null, 0)]
    [InlineData("permessage-deflate; server_max_window_bits=8", null, 0)] // below what zlib's raw deflate supports
    [InlineData("permessage-deflate; server_max_window_bits", null, 0)] // the value is required
    public void Permessage_deflate_offers_are_answered_per_rfc_7692(string offer, string? expected, int serverWindowBits)
    {
        var negotiated = PerMessageDeflate.Negotiate(offer);
        Assert.Equal(expected, negotiated?.Response);
        if (negotiated is { } accepted)
        {
            Assert.Equal(serverWindowBits, accepted.ServerWindowBits);
        }
    }

    private static async Task<string> ReadHeadAsync(NetworkStream stream)
    {
        // Byte by byte, so nothing after the head (the first WebSocket frame) is taken from the stream.
        var head = new StringBuilder();
        var one = new byte[1];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            Assert.Equal(1, await stream.ReadAsync(one, timeout.Token));
            head.Append((char)one[0]);
        }

        return head.ToString();
    }
}
