using System.Text;
using Broker.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Broker.Client.Tests;

/// <summary>
/// The client against RabbitMQ's own STOMP (tcp://) and Web-STOMP (ws://, binary frames) plugins on the private test
/// node: proof that it speaks STOMP, not only StompBroker's dialect. RabbitMQ treats the CONNECT host as a vhost ("/").
/// </summary>
[Collection(RabbitMqTestGroup.Name)]
public sealed class RabbitMqStompTests(RabbitMqServer rabbit, ITestOutputHelper output)
{
    public static TheoryData<string> Plugins => ["stomp", "web-stomp"];

    [Theory]
    [MemberData(nameof(Plugins))]
    public async Task Connects_with_credentials_and_virtual_host(string plugin)
    {
        if (!Available())
        {
            return;
        }

        await using var client = await StompClient.ConnectAsync(Options(plugin));

        Assert.Equal(StompConnectionState.Connected, client.State);
        Assert.Equal(Stomp.StompVersion.V1_2, client.Version);
        Assert.StartsWith("RabbitMQ/", client.Server, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Plugins))]
    public async Task Bad_credentials_surface_rabbitmqs_error(string plugin)
    {
        if (!Available())
        {
            return;
        }

        var error = await Assert.ThrowsAsync<StompErrorException>(() => StompClient.ConnectAsync(Options(plugin) with { Passcode = "wrong" }));

        Assert.Contains("Access refused", error.Message + error.Details, StringComparison.OrdinalIgnoreCase);
    }

    [Theory]
    [MemberData(nameof(Plugins))]
    public async Task A_token_is_sent_as_the_passcode(string plugin)
    {
        if (!Available())
        {
            return;
        }

        // RabbitMQ's internal backend checks it like a password: the guest user's password as "token" gets in.
        await using var client = await StompClient.ConnectAsync(Options(plugin) with { Passcode = null, Token = "guest" });
        Assert.Equal(StompConnectionState.Connected, client.State);
    }

    [Theory]
    [MemberData(nameof(Plugins))]
    public async Task Sends_with_receipts_and_subscribers_get_text_bytes_json_and_headers(string plugin)
    {
        if (!Available())
        {
            return;
        }

        await using var client = await StompClient.ConnectAsync(Options(plugin));
        var queue = Unique.Queue("rmq");
        await using var subscription = await client.SubscribeAsync(queue);
        var bytes = new byte[] { 0, 1, 2, 0xFF, 0, 0x80 };

        await client.SendAsync(queue, "héllo", new StompSendOptions { WaitForReceipt = true, Headers = new Dictionary<string, string> { ["x-trace"] = "abc" } });
        await client.SendAsync(queue, bytes, Clients.Receipted);
        await client.SendJsonAsync(queue, new { Id = 7 }, Clients.Receipted);

        var text = await subscription.NextAsync();
        Assert.Equal("héllo", text.BodyText);
        Assert.Equal("abc", text.GetHeader("x-trace"));
        Assert.Equal(queue, text.Destination);
        Assert.Equal(bytes, (await subscription.NextAsync()).Body.ToArray());
        var json = await subscription.NextAsync();
        Assert.Equal("application/json", json.ContentType);
        Assert.Equal(7, json.GetJson<Payload>()!.Id);
    }

    [Theory]
    [MemberData(nameof(Plugins))]
    public async Task A_receipted_send_to_an_invalid_destination_throws_rabbitmqs_error(string plugin)
    {
        if (!Available())
        {
            return;
        }

        await using var client = await StompClient.ConnectAsync(Options(plugin));
        var states = new StateRecorder(client);

        // RabbitMQ's ERROR has no receipt-id; the client ties it to the receipted SEND it must be about.
        var error = await Assert.ThrowsAsync<StompErrorException>(async () => await client.SendAsync("/nope/x", "lost", Clients.Receipted));

        output.WriteLine($"RabbitMQ said: {error.Message} / {error.Details}");
        Assert.Equal("Unknown destination", error.Message);
        Assert.Contains("/nope/x", error.Details, StringComparison.Ordinal);

        // RabbitMQ keeps the connection after this ERROR, and so does the client.
        var queue = Unique.Queue("rmq-after-error");
        await using var subscription = await client.SubscribeAsync(queue);
        await client.SendAsync(queue, "fine", Clients.Receipted);
        Assert.Equal("fine", (await subscription.NextAsync()).BodyText);

        // An ERROR about a SEND that asked for no receipt is not pinned on the receipted SEND after it.
        await client.SendAsync("/nope/y", "fire and forget");
        await client.SendAsync(queue, "after", Clients.Receipted);
        Assert.Equal("after", (await subscription.NextAsync()).BodyText);
        Assert.Empty(states.Transitions);
    }

    [Theory]
    [MemberData(nameof(Plugins))]
    public async Task Client_individual_ack_and_nack_with_prefetch(string plugin)
    {
        if (!Available())
        {
            return;
        }

        await using var client = await StompClient.ConnectAsync(Options(plugin));
        var queue = Unique.Queue("rmq-ack");
        var subscription = await client.SubscribeAsync(queue, new StompSubscribeOptions { AckMode = StompAckMode.ClientIndividual, PrefetchCount = 2 });
        foreach (var body in new[] { "a", "b", "c" })
        {
            await client.SendAsync(queue, body, Clients.Receipted);
        }

        var a = await subscription.NextAsync();
        var b = await subscription.NextAsync();
        Assert.Equal(["a", "b"], new[] { a.BodyText, b.BodyText });
        await a.AckAsync();
        var c = await subscription.NextAsync(); // prefetch 2: only after the ack
        Assert.Equal("c", c.BodyText);
        await b.NackAsync(); // requeued
        await c.AckAsync();

        var again = await subscription.NextAsync();
        Assert.Equal("b", again.BodyText);
        Assert.True(again.Redelivered);
        await again.AckAsync();

        // Nothing unsettled is left: after unsubscribing, a new subscriber gets only what is sent next.
        await subscription.DisposeAsync();
        await using var next = await client.SubscribeAsync(queue);
        await client.SendAsync(queue, "marker", Clients.Receipted);
        Assert.Equal("marker", (await next.NextAsync()).BodyText);
    }

    [Theory]
    [MemberData(nameof(Plugins))]
    public async Task Client_mode_handler_acks_what_it_handled(string plugin)
    {
        if (!Available())
        {
            return;
        }

        await using var client = await StompClient.ConnectAsync(Options(plugin));
        var queue = Unique.Queue("rmq-handler");
        var handled = System.Threading.Channels.Channel.CreateUnbounded<string>();
        var subscription = await client.SubscribeAsync(
            queue,
            async (message, ct) => await handled.Writer.WriteAsync(message.BodyText, ct),
            new StompSubscribeOptions { AckMode = StompAckMode.Client, PrefetchCount = 1 });

        for (var i = 0; i < 3; i++)
        {
            await client.SendAsync(queue, $"m{i}", Clients.Receipted);
        }

        using var cts = new CancellationTokenSource(Clients.Deadline);
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal($"m{i}", await handled.Reader.ReadAsync(cts.Token)); // prefetch 1: each needs the last one acked
        }

        await subscription.DisposeAsync();
        await using var next = await client.SubscribeAsync(queue);
        await client.SendAsync(queue, "marker", Clients.Receipted);
        Assert.Equal("marker", (await next.NextAsync()).BodyText);
    }

    [Theory]
    [MemberData(nameof(Plugins))]
    public async Task Transactions_commit_and_abort(string plugin)
    {
        if (!Available())
        {
            return;
        }

        await using var client = await StompClient.ConnectAsync(Options(plugin));
        var queue = Unique.Queue("rmq-tx");
        await using var subscription = await client.SubscribeAsync(queue, new StompSubscribeOptions { AckMode = StompAckMode.ClientIndividual });

        var aborted = await client.BeginTransactionAsync();
        await aborted.SendAsync(queue, "never");
        await aborted.AbortAsync();

        await using (var committed = await client.BeginTransactionAsync())
        {
            await committed.SendAsync(queue, "one");
            await committed.SendAsync(queue, "two");
            await committed.CommitAsync();
        }

        var one = await subscription.NextAsync();
        var two = await subscription.NextAsync();
        Assert.Equal(["one", "two"], new[] { one.BodyText, two.BodyText });

        // An ACK inside an aborted transaction does not happen; inside a committed one it does.
        var undone = await client.BeginTransactionAsync();
        await undone.AckAsync(one);
        await undone.AbortAsync();
        await using (var done = await client.BeginTransactionAsync())
        {
            await done.AckAsync(one);
            await done.AckAsync(two);
            await done.CommitAsync();
        }

        await client.SendAsync(queue, "marker", Clients.Receipted);
        Assert.Equal("marker", (await subscription.NextAsync()).BodyText);
    }

    [Theory]
    [MemberData(nameof(Plugins))]
    public async Task Request_reply_over_temp_queues(string plugin)
    {
        if (!Available())
        {
            return;
        }

        await using var responder = await StompClient.ConnectAsync(Options(plugin));
        await using var requester = await StompClient.ConnectAsync(Options(plugin));
        var service = Unique.Queue("rmq-service");
        await using var serving = await responder.SubscribeAsync(service, (request, ct) =>
            responder.ReplyAsync(request, Encoding.UTF8.GetBytes("re: " + request.BodyText), cancellationToken: ct));

        var reply = await requester.RequestAsync(service, "hi"u8.ToArray(), Clients.Deadline);

        Assert.Equal("re: hi", reply.BodyText);
        await Assert.ThrowsAsync<TimeoutException>(() => requester.RequestAsync(Unique.Queue("rmq-nobody"), "?"u8.ToArray(), TimeSpan.FromMilliseconds(300)));
    }

    private sealed record Payload(int Id);

    private StompClientOptions Options(string plugin) => Clients.Options(plugin == "stomp" ? new Uri($"tcp://127.0.0.1:{rabbit.StompPort}") : rabbit.WebStompUri!) with
    {
        Login = "guest",
        Passcode = "guest",
        VirtualHost = "/",
    };

    private bool Available()
    {
        if (rabbit.IsPrivate)
        {
            return true;
        }

        output.WriteLine("skipped: RABBITMQ_URL points at a RabbitMQ whose STOMP plugins the fixture does not know");
        return false;
    }
}
