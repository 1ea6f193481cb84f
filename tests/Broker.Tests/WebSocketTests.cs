using System.Net;
using System.Net.WebSockets;
using System.Text;
using Broker.Stomp;
using Broker.Tests.Infrastructure;

namespace Broker.Tests;

/// <summary>What STOMP over WebSocket adds: subprotocols, message framing, text/binary, compression (checklist 62-64).</summary>
public sealed class WebSocketTests(BrokerFixture broker) : IClassFixture<BrokerFixture>
{
    private BrokerServer Server => broker.Server;

    [Theory]
    [InlineData(new[] { "v10.stomp", "v11.stomp", "v12.stomp" }, "v12.stomp")]
    [InlineData(new[] { "v12.stomp", "v11.stomp", "v10.stomp" }, "v12.stomp")]
    [InlineData(new[] { "v11.stomp", "v10.stomp" }, "v11.stomp")]
    [InlineData(new[] { "mqtt", "v10.stomp" }, "v10.stomp")]
    [InlineData(new[] { "v12.stomp" }, "v12.stomp")]
    public async Task The_highest_offered_stomp_subprotocol_is_chosen(string[] offered, string expected)
    {
        await using var client = await StompTestClient.ConnectWebSocketAsync(Server.WebSocketUri, offered);
        Assert.Equal(expected, client.SubProtocol);
        await client.ConnectAsync();
        await client.AssertAliveAsync();
    }

    [Theory]
    [InlineData("v11.stomp", "1.0,1.1,1.2", "1.1")]
    [InlineData("v11.stomp", "1.1,1.2", "1.1")]
    [InlineData("v10.stomp", "1.0,1.1,1.2", "1.0")]
    [InlineData("v12.stomp", "1.0,1.1,1.2", "1.2")]
    [InlineData("v11.stomp", "1.2", "1.2")] // accept-version leaves no choice: it wins
    public async Task The_subprotocol_caps_the_stomp_version(string subProtocol, string acceptVersion, string expected)
    {
        await using var client = await StompTestClient.ConnectWebSocketAsync(Server.WebSocketUri, [subProtocol]);
        Assert.Equal(subProtocol, client.SubProtocol);
        var connected = await client.ConnectAsync(acceptVersion);
        Assert.Equal(expected, connected["version"]);
        await client.AssertAliveAsync();
    }

    [Fact]
    public async Task A_client_offering_no_subprotocol_is_accepted_without_one()
    {
        await using var client = await StompTestClient.ConnectWebSocketAsync(Server.WebSocketUri, []);
        Assert.Null(client.SubProtocol);
        var connected = await client.ConnectAsync();
        Assert.Equal("1.2", connected["version"]);
        await client.AssertAliveAsync();
    }

    [Fact]
    public async Task A_client_offering_only_unknown_subprotocols_gets_400_with_a_reason()
    {
        using var socket = new ClientWebSocket();
        socket.Options.AddSubProtocol("mqtt");
        socket.Options.CollectHttpResponseDetails = true;
        await Assert.ThrowsAsync<WebSocketException>(() => socket.ConnectAsync(Server.WebSocketUri, CancellationToken.None));
        Assert.Equal(HttpStatusCode.BadRequest, socket.HttpStatusCode);

        // The same handshake by hand, to read the body.
        var (status, body) = await RawUpgradeAsync("mqtt");
        Assert.Equal(400, status);
        Assert.Contains("subprotocol", body, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("mqtt", body, StringComparison.Ordinal);
        Assert.Contains("v12.stomp", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_plain_http_request_to_the_endpoint_gets_400()
    {
        using var http = new HttpClient();
        var response = await http.GetAsync(new Uri($"http://127.0.0.1:{Server.WebSocketPort}/ws"));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("WebSocket", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_frame_split_over_several_messages_is_reassembled()
    {
        var queue = Unique.Queue();
        await using var client = await Server.ConnectClientAsync(Transport.WebSocket);
        await client.SubscribeAsync(queue, "q");
        var frame = Frames.Send(queue, Frames.Bytes("in pieces"), ("x-h", "v"), ("receipt", "split"));

        // stomp.js splitLargeFrames: each piece is a complete WS message.
        foreach (var piece in frame.Chunk(7))
        {
            await client.WebSocketSender!.SendAsync(piece, WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None);
        }

        var message = await client.ReceiveMessageAsync();
        Assert.Equal("in pieces", message.BodyText);
        Assert.Equal("v", message["x-h"]);
        await client.ExpectReceiptAsync("split");
    }

    [Fact]
    public async Task A_frame_split_into_ws_fragments_is_reassembled()
    {
        var queue = Unique.Queue();
        await using var client = await Server.ConnectClientAsync(Transport.WebSocket);
        await client.SubscribeAsync(queue, "q");
        var frame = Frames.Send(queue, Frames.Bytes("fragmented"));

        // One WS message in continuation fragments.
        var pieces = frame.Chunk(5).ToArray();
        for (var i = 0; i < pieces.Length; i++)
        {
            await client.WebSocketSender!.SendAsync(pieces[i], WebSocketMessageType.Text, endOfMessage: i == pieces.Length - 1, CancellationToken.None);
        }

        Assert.Equal("fragmented", (await client.ReceiveMessageAsync()).BodyText);
    }

    [Fact]
    public async Task Several_frames_and_bare_heart_beats_in_one_message_are_all_processed()
    {
        var queue = Unique.Queue();
        await using var client = await Server.ConnectClientAsync(Transport.WebSocket);
        await client.SubscribeAsync(queue, "q");

        byte[] batch =
        [
            .. Frames.Bytes("\n"),
            .. Frames.Send(queue, Frames.Bytes("one")),
            .. Frames.Bytes("\n\r\n"),
            .. Frames.Send(queue, Frames.Bytes("two")),
            .. Frames.Send(queue, Frames.Bytes("three"), ("receipt", "batch")),
            .. Frames.Bytes("\n"),
        ];
        await client.WebSocketSender!.SendAsync(batch, WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None);
        await client.WebSocketSender.SendAsync(Frames.Bytes("\n"), WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None);
        await client.WebSocketSender.SendAsync(Frames.Bytes("\r\n\n"), WebSocketMessageType.Binary, endOfMessage: true, CancellationToken.None);

        Assert.Equal(["one", "two", "three"], (await client.ReceiveMessagesAsync(3)).Select(m => m.BodyText));
        await client.ExpectReceiptAsync("batch");
        await client.AssertAliveAsync();
    }

    [Fact]
    public async Task Binary_messages_are_accepted()
    {
        var queue = Unique.Queue();
        await using var client = await StompTestClient.ConnectWebSocketAsync(Server.WebSocketUri);
        await client.WebSocketSender!.SendAsync(Frames.Bytes("CONNECT\naccept-version:1.2\nhost:/\n\n\0"), WebSocketMessageType.Binary, true, CancellationToken.None);
        Assert.Equal(StompCommand.Connected, (await client.ReceiveAsync()).Command);
        await client.SubscribeAsync(queue, "q");

        byte[] body = [0, 1, 2, 0xFF, 0];
        await client.WebSocketSender.SendAsync(Frames.Send(queue, body), WebSocketMessageType.Binary, true, CancellationToken.None);
        Assert.Equal(body, (await client.ReceiveMessageAsync()).Body);
    }

    [Fact]
    public async Task Each_outgoing_frame_is_one_message_text_for_utf8_and_binary_otherwise()
    {
        var topic = Unique.Topic();
        await using var client = await Server.ConnectClientAsync(Transport.WebSocket);
        await using var producer = await Server.ConnectClientAsync(Transport.Tcp);
        await client.SubscribeAsync(topic, "t");
        var before = client.WebSocketMessagesSnapshot();
        Assert.Equal(2, before.Count); // CONNECTED, RECEIPT
        Assert.All(before, m => Assert.Equal(WebSocketMessageType.Text, m.Type));

        await producer.SendAsync(topic, "plain text ✓");
        await producer.SendFrameAsync(StompCommand.Send, [("destination", topic)], [0x41, 0x00, 0x42]); // NUL in the body
        await producer.SendFrameAsync(StompCommand.Send, [("destination", topic)], [0xC3, 0x28]); // invalid UTF-8
        await producer.SendFrameAsync(StompCommand.Send, [("destination", topic)], []); // empty body
        var received = await client.ReceiveMessagesAsync(4);

        var after = client.WebSocketMessagesSnapshot().Skip(before.Count).ToList();
        Assert.Equal(
            [WebSocketMessageType.Text, WebSocketMessageType.Binary, WebSocketMessageType.Binary, WebSocketMessageType.Text],
            after.Select(m => m.Type));
        for (var i = 0; i < 4; i++)
        {
            // One message per frame: the message is exactly the frame, command line to NUL.
            var headerBytes = Encoding.UTF8.GetByteCount("MESSAGE\n" + string.Concat(received[i].Headers.Select(h => $"{Escape(h.Key)}:{Escape(h.Value)}\n")) + "\n");
            Assert.Equal(headerBytes + received[i].Body.Length + 1, after[i].Length);
        }

        static string Escape(string s) => s.Replace("\\", "\\\\", StringComparison.Ordinal).Replace(":", "\\c", StringComparison.Ordinal);
    }

    [Fact]
    public async Task Permessage_deflate_is_negotiated_when_offered_and_messages_arrive_intact()
    {
        var queue = Unique.Queue();
        await using var client = await StompTestClient.ConnectWebSocketAsync(Server.WebSocketUri, compression: true);
        var extensions = ResponseHeader(client, "Sec-WebSocket-Extensions");
        Assert.NotNull(extensions);
        Assert.Contains("permessage-deflate", extensions, StringComparison.Ordinal);
        // The broker's compressor lives for one message only: kept, it would hold ~256 KiB per (idle) connection.
        Assert.Contains("server_no_context_takeover", extensions, StringComparison.Ordinal);
        await client.ConnectAsync();
        await client.SubscribeAsync(queue, "q");

        var text = string.Concat(Enumerable.Repeat("compress me, compress me; ", 8000)); // ~200 KB, very compressible
        var random = new byte[300_000];
        new Random(42).NextBytes(random);
        await client.SendAsync(queue, text);
        await client.SendAsync(queue, "tiny");
        await client.SendFrameAsync(StompCommand.Send, [("destination", queue)], random);

        Assert.Equal(text, (await client.ReceiveMessageAsync()).BodyText);
        Assert.Equal("tiny", (await client.ReceiveMessageAsync()).BodyText);
        Assert.Equal(random, (await client.ReceiveMessageAsync()).Body);
    }

    [Fact]
    public async Task Without_compression_offered_none_is_negotiated()
    {
        await using var client = await StompTestClient.ConnectWebSocketAsync(Server.WebSocketUri);
        Assert.Null(ResponseHeader(client, "Sec-WebSocket-Extensions"));
    }

    private static string? ResponseHeader(StompTestClient client, string name) =>
        client.HttpResponseHeaders!.Where(h => string.Equals(h.Key, name, StringComparison.OrdinalIgnoreCase)).Select(h => string.Join(",", h.Value)).FirstOrDefault();

    // An upgrade request by hand, to see the status and body of a refusal.
    private async Task<(int Status, string Body)> RawUpgradeAsync(string protocol)
    {
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri($"http://127.0.0.1:{Server.WebSocketPort}/ws"));
        request.Headers.Connection.Add("Upgrade");
        request.Headers.Upgrade.Add(new System.Net.Http.Headers.ProductHeaderValue("websocket"));
        request.Headers.Add("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
        request.Headers.Add("Sec-WebSocket-Version", "13");
        request.Headers.Add("Sec-WebSocket-Protocol", protocol);
        using var response = await http.SendAsync(request);
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
    }
}
