using System.Text;
using Broker.Tests.Infrastructure;

namespace Broker.Client.Tests;

/// <summary>SEND as bytes, text and JSON; headers; receipts; the broker's ERROR as an exception.</summary>
public sealed class SendTests(BrokerFixture broker) : IClassFixture<BrokerFixture>
{
    private BrokerServer Server => broker.Server;

    private sealed record Order(int Id, string Customer, decimal Total, string[] Lines);

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task Text_is_sent_as_utf8_with_a_text_content_type(Transport transport)
    {
        await using var client = await Clients.ConnectAsync(Server, transport);
        var queue = Unique.Queue("text");
        await using var subscription = await client.SubscribeAsync(queue);

        await client.SendAsync(queue, "grüße, 世界");

        var message = await subscription.NextAsync();
        Assert.Equal("grüße, 世界", message.BodyText);
        Assert.Equal("text/plain;charset=utf-8", message.ContentType);
        Assert.Equal(queue, message.Destination);
        Assert.Equal(subscription.Id, message.SubscriptionId);
        Assert.False(string.IsNullOrEmpty(message.MessageId));
        Assert.False(message.Redelivered);
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task Bytes_arrive_unchanged_nul_bytes_and_invalid_utf8_included(Transport transport)
    {
        await using var client = await Clients.ConnectAsync(Server, transport);
        var queue = Unique.Queue("bytes");
        await using var subscription = await client.SubscribeAsync(queue);
        var body = new byte[70_000];
        Random.Shared.NextBytes(body);
        body[0] = 0;
        body[1] = 0xFF;
        body[^1] = 0;

        await client.SendAsync(queue, body);
        await client.SendAsync(queue, ReadOnlyMemory<byte>.Empty);

        var message = await subscription.NextAsync();
        Assert.Equal(body, message.Body.ToArray());
        Assert.Null(message.ContentType);
        Assert.Equal(0, (await subscription.NextAsync()).Body.Length);
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task Json_round_trips_with_its_content_type(Transport transport)
    {
        await using var client = await Clients.ConnectAsync(Server, transport);
        var queue = Unique.Queue("json");
        await using var subscription = await client.SubscribeAsync(queue);
        var order = new Order(42, "Zoë", 19.95m, ["tea", "scones"]);

        await client.SendJsonAsync(queue, order);

        var message = await subscription.NextAsync();
        Assert.Equal("application/json", message.ContentType);
        Assert.Contains("\"customer\":", message.BodyText, StringComparison.Ordinal); // the Web defaults: camelCase
        var received = message.GetJson<Order>();
        Assert.NotNull(received);
        Assert.Equal(order.Id, received.Id);
        Assert.Equal(order.Customer, received.Customer);
        Assert.Equal(order.Total, received.Total);
        Assert.Equal(order.Lines, received.Lines);
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task Custom_headers_and_content_type_pass_through(Transport transport)
    {
        await using var client = await Clients.ConnectAsync(Server, transport);
        var queue = Unique.Queue("headers");
        await using var subscription = await client.SubscribeAsync(queue);

        await client.SendAsync(queue, "<x/>", new StompSendOptions
        {
            ContentType = "application/xml",
            Headers = new Dictionary<string, string> { ["x-tenant"] = "acme", ["x-colon:and\nnewline"] = "value:with\\escapes\n", ["priority"] = "7" },
        });

        var message = await subscription.NextAsync();
        Assert.Equal("application/xml", message.ContentType);
        Assert.Equal("acme", message.GetHeader("x-tenant"));
        Assert.Equal("value:with\\escapes\n", message.GetHeader("x-colon:and\nnewline"));
        Assert.Equal("7", message.GetHeader("priority"));
        Assert.Null(message.GetHeader("receipt"));
        Assert.Null(message.GetHeader("no-such-header"));
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task A_receipted_send_completes_once_the_broker_holds_the_message(Transport transport)
    {
        await using var client = await Clients.ConnectAsync(Server, transport);
        var queue = Unique.Queue("receipt");

        for (var i = 1; i <= 3; i++)
        {
            await client.SendAsync(queue, $"m{i}", Clients.Receipted);
            Assert.Equal(i, Server.QueueDepth(queue)); // no waiting: the receipt means it is there
        }

        await client.SendAsync(queue, Encoding.UTF8.GetBytes("bytes"), Clients.Receipted);
        await client.SendJsonAsync(queue, new { n = 5 }, Clients.Receipted);
        Assert.Equal(5, Server.QueueDepth(queue));
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task A_broker_error_on_a_receipted_send_throws_the_brokers_message(Transport transport)
    {
        await using var client = await Clients.ConnectAsync(Server, transport, o => o with { Reconnect = StompReconnectOptions.Disabled });

        var error = await Assert.ThrowsAsync<StompErrorException>(async () => await client.SendAsync("/nope/x", "lost", Clients.Receipted));

        Assert.Equal("unknown destination '/nope/x': use /topic/NAME, /queue/NAME, /temp-queue/NAME, /exchange/NAME[/KEY] or /amq/queue/NAME", error.Message);
        Assert.Contains("The failing frame", error.Details, StringComparison.Ordinal);
        Assert.Contains(error.Headers, h => h.Key == "receipt-id");

        // The broker closes the connection after an ERROR; with reconnect off the client is closed, and says why.
        await Wait.UntilAsync(() => client.State == StompConnectionState.Closed, Clients.Deadline, "the client to close");
        var lost = await Assert.ThrowsAnyAsync<Exception>(async () => await client.SendAsync(Unique.Queue(), "after"));
        Assert.True(lost is StompConnectionException or ObjectDisposedException, lost.ToString());
    }

    [Fact]
    public async Task After_a_broker_error_the_client_reconnects_and_works_again()
    {
        await using var client = await Clients.ConnectAsync(Server, Transport.Tcp);
        var states = new StateRecorder(client);
        await Assert.ThrowsAsync<StompErrorException>(async () => await client.SendAsync("/nope/x", "lost", Clients.Receipted));

        await states.WaitForAsync(StompConnectionState.Reconnecting, StompConnectionState.Connected);
        var reconnecting = states.Events.First(e => e.Current == StompConnectionState.Reconnecting);
        Assert.IsType<StompErrorException>(reconnecting.Error);

        var queue = Unique.Queue("again");
        await client.SendAsync(queue, "fine", Clients.Receipted);
        Assert.Equal(1, Server.QueueDepth(queue));
    }

    [Fact]
    public async Task Arguments_are_validated_before_anything_is_sent()
    {
        await using var client = await Clients.ConnectAsync(Server, Transport.Tcp);
        await Assert.ThrowsAsync<ArgumentException>(async () => await client.SendAsync("", "x"));
        await Assert.ThrowsAsync<ArgumentNullException>(async () => await client.SendAsync(Unique.Queue(), (string)null!));
        await Assert.ThrowsAsync<ArgumentException>(async () => await client.SubscribeAsync(""));
        Assert.Equal(StompConnectionState.Connected, client.State);
    }
}
