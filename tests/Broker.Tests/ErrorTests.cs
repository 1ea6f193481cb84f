using System.Net.WebSockets;
using Broker.Stomp;
using Broker.Tests.Infrastructure;

namespace Broker.Tests;

/// <summary>
/// Every frame the broker refuses: an ERROR with a message header (and receipt-id when the frame asked for a
/// receipt), then the connection closes (WebSocket 1002), and every other connection carries on (checklist 6, 10,
/// 23, 33-38, 44-45, 48, 52, 59-61).
/// </summary>
public sealed class ErrorTests(BrokerFixture broker) : IClassFixture<BrokerFixture>
{
    private BrokerServer Server => broker.Server;

    /// <summary>name, whether the client CONNECTs first, what it then sends, the receipt-id the ERROR must carry.</summary>
    private static readonly (string Name, bool Connect, string Payload, string? ReceiptId)[] Cases =
    [
        ("header without colon", true, "SEND\ndestination:/queue/err\nbogus\n\nx\0", null),
        ("undefined escape \\t", true, "SEND\ndestination:/queue/a\\tb\nreceipt:r\n\nx\0", null),
        ("unknown command", true, "FLY\nreceipt:r\n\n\0", null),
        ("lower-case command", true, "send\ndestination:/queue/err\n\nx\0", null),
        ("server command from a client", true, "MESSAGE\ndestination:/queue/err\nmessage-id:1\nsubscription:1\nreceipt:r\n\nx\0", "r"),
        ("body on a SUBSCRIBE", true, "SUBSCRIBE\ndestination:/queue/err\nid:1\n\nbody\0", null),
        ("SEND without destination", true, "SEND\nreceipt:r-send\n\nx\0", "r-send"),
        ("SUBSCRIBE without id", true, "SUBSCRIBE\ndestination:/queue/err\nreceipt:r-sub\n\n\0", "r-sub"),
        ("SUBSCRIBE without destination", true, "SUBSCRIBE\nid:1\nreceipt:r-sub\n\n\0", "r-sub"),
        ("SUBSCRIBE with a bad ack mode", true, "SUBSCRIBE\ndestination:/queue/err\nid:1\nack:sometimes\nreceipt:r\n\n\0", "r"),
        ("UNSUBSCRIBE without id", true, "UNSUBSCRIBE\nreceipt:r-unsub\n\n\0", "r-unsub"),
        ("ACK without id", true, "ACK\nreceipt:r-ack\n\n\0", "r-ack"),
        ("NACK without id", true, "NACK\nreceipt:r-nack\n\n\0", "r-nack"),
        ("BEGIN without transaction", true, "BEGIN\nreceipt:r-begin\n\n\0", "r-begin"),
        ("COMMIT without transaction", true, "COMMIT\nreceipt:r-commit\n\n\0", "r-commit"),
        ("ABORT without transaction", true, "ABORT\nreceipt:r-abort\n\n\0", "r-abort"),
        ("duplicate subscription id", true, "SUBSCRIBE\ndestination:/queue/err-a\nid:dup\n\n\0SUBSCRIBE\ndestination:/queue/err-b\nid:dup\nreceipt:r-dup\n\n\0", "r-dup"),
        ("unknown subscription id", true, "UNSUBSCRIBE\nid:nope\nreceipt:r\n\n\0", "r"),
        ("unknown transaction on COMMIT", true, "COMMIT\ntransaction:nope\nreceipt:r\n\n\0", "r"),
        ("unknown transaction on ABORT", true, "ABORT\ntransaction:nope\nreceipt:r\n\n\0", "r"),
        ("unknown transaction on SEND", true, "SEND\ndestination:/queue/err\ntransaction:nope\nreceipt:r\n\nx\0", "r"),
        ("duplicate transaction id", true, "BEGIN\ntransaction:t\n\n\0BEGIN\ntransaction:t\nreceipt:r\n\n\0", "r"),
        ("unknown ack id", true, "ACK\nid:nope\nreceipt:r\n\n\0", "r"),
        ("unknown nack id", true, "NACK\nid:session-x-1\nreceipt:r\n\n\0", "r"),
        ("frame before CONNECT", false, "SEND\ndestination:/queue/err\nreceipt:r\n\nx\0", "r"),
        ("SUBSCRIBE before CONNECT", false, "SUBSCRIBE\ndestination:/queue/err\nid:1\n\n\0", null),
        ("frame after DISCONNECT", true, "DISCONNECT\n\n\0SEND\ndestination:/queue/err\nreceipt:r\n\nx\0", "r"),
        ("SEND to /exchange/", true, "SEND\ndestination:/exchange/amq.topic/key\nreceipt:r\n\nx\0", "r"),
        ("SUBSCRIBE to /exchange/", true, "SUBSCRIBE\ndestination:/exchange/amq.topic/key\nid:1\nreceipt:r\n\n\0", "r"),
        ("SEND to /amq/queue/", true, "SEND\ndestination:/amq/queue/q\nreceipt:r\n\nx\0", "r"),
        ("SUBSCRIBE to /amq/queue/", true, "SUBSCRIBE\ndestination:/amq/queue/q\nid:1\nreceipt:r\n\n\0", "r"),
        ("unknown destination prefix", true, "SEND\ndestination:/somewhere/else\nreceipt:r\n\nx\0", "r"),
        ("destination without prefix", true, "SUBSCRIBE\ndestination:plain\nid:1\nreceipt:r\n\n\0", "r"),
        ("content-length longer than the body", true, "SEND\ndestination:/queue/err\ncontent-length:2\n\nxyz\0", null),
    ];

    public static TheoryData<string, Transport> CaseNames()
    {
        var data = new TheoryData<string, Transport>();
        foreach (var (name, _, _, _) in Cases)
        {
            data.Add(name, Transport.Tcp);
            data.Add(name, Transport.WebSocket);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public async Task A_bad_frame_gets_an_error_and_the_connection_closes(string name, Transport transport)
    {
        var (_, connect, payload, receiptId) = Cases.Single(c => c.Name == name);
        await using var bystander = await Server.ConnectClientAsync(transport == Transport.Tcp ? Transport.WebSocket : Transport.Tcp);
        await using var client = connect ? await Server.ConnectClientAsync(transport) : await Server.OpenAsync(transport);

        await client.SendRawAsync(payload);

        var error = await client.ExpectErrorThenCloseAsync(receiptId);
        Assert.False(string.IsNullOrWhiteSpace(error["message"]));
        Assert.DoesNotContain('\n', error["message"]!);
        if (transport == Transport.WebSocket)
        {
            Assert.Equal(WebSocketCloseStatus.ProtocolError, client.CloseStatus);
        }

        // A connection opened before the failure and one opened after both still work.
        await bystander.AssertAliveAsync();
        await Server.AssertStillServesOthersAsync();
    }

    [Theory]
    [InlineData(Transport.Tcp, "2.0")]
    [InlineData(Transport.Tcp, "1.3,2.1")]
    [InlineData(Transport.WebSocket, "2.0")]
    public async Task An_unsupported_accept_version_gets_an_error_listing_the_supported_ones(Transport transport, string acceptVersion)
    {
        await using var client = await Server.OpenAsync(transport);
        await client.SendRawAsync($"CONNECT\naccept-version:{acceptVersion}\nhost:/\n\n\0");

        var error = await client.ExpectErrorThenCloseAsync();
        Assert.Equal("1.0,1.1,1.2", error["version"]);
        Assert.Equal("text/plain", error["content-type"]);
        Assert.NotEmpty(error.Body);
        if (transport == Transport.WebSocket)
        {
            Assert.Equal(WebSocketCloseStatus.ProtocolError, client.CloseStatus);
        }

        await Server.AssertStillServesOthersAsync();
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task An_error_names_the_failing_frame_in_its_body(Transport transport)
    {
        await using var client = await Server.ConnectClientAsync(transport);
        await client.SendRawAsync("SEND\nreceipt:r-77\nx-marker:here\n\nx\0");

        var error = await client.ExpectErrorThenCloseAsync("r-77");
        Assert.Equal("text/plain", error["content-type"]);
        Assert.Equal(error.Body.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), error["content-length"]);
        Assert.Contains("x-marker:here", error.BodyText, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Acking_a_message_twice_is_an_error()
    {
        var queue = Unique.Queue();
        await using var client = await Server.ConnectClientAsync();
        await client.SubscribeAsync(queue, "q", "client-individual");
        await client.SendAsync(queue, "once");
        var message = await client.ReceiveMessageAsync();
        await client.AckAsync(message);

        await client.SendFrameAsync(StompCommand.Ack, [("id", message["ack"]!), ("receipt", "twice")]);
        await client.ExpectErrorThenCloseAsync("twice");
    }

    [Fact]
    public async Task An_error_on_one_connection_does_not_disturb_a_subscription_on_another()
    {
        var topic = Unique.Topic();
        await using var listener = await Server.ConnectClientAsync(Transport.WebSocket);
        await using var producer = await Server.ConnectClientAsync();
        await listener.SubscribeAsync(topic, "l");
        await producer.SendAsync(topic, "before", receipt: true);

        await using (var bad = await Server.ConnectClientAsync())
        {
            await bad.SubscribeAsync(topic, "b");
            await bad.SendRawAsync("NONSENSE\n\n\0");
            await bad.ExpectErrorAsync();
        }

        await producer.SendAsync(topic, "after", receipt: true);
        Assert.Equal("before", (await listener.ReceiveMessageAsync()).BodyText);
        Assert.Equal("after", (await listener.ReceiveMessageAsync()).BodyText);
    }
}
