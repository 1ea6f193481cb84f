using Broker.Tests.Infrastructure;

namespace Broker.Client.Tests;

/// <summary>Every operation honours its CancellationToken, and a cancelled operation leaves the client usable.</summary>
public sealed class CancellationTests(BrokerFixture broker) : IClassFixture<BrokerFixture>
{
    private BrokerServer Server => broker.Server;

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task A_send_with_a_cancelled_token_throws_and_sends_nothing(Transport transport)
    {
        await using var client = await Clients.ConnectAsync(Server, transport);
        var queue = Unique.Queue("cancelled");
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await client.SendAsync(queue, "no", cancellationToken: cancelled.Token));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await client.SendAsync(queue, "no"u8.ToArray(), Clients.Receipted, cancelled.Token));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await client.SendJsonAsync(queue, 1, cancellationToken: cancelled.Token));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await client.SubscribeAsync(queue, cancellationToken: cancelled.Token));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await client.BeginTransactionAsync(cancelled.Token));

        await client.SendAsync(queue, "yes", Clients.Receipted);
        Assert.Equal(1, Server.QueueDepth(queue));
        Assert.Equal(StompConnectionState.Connected, client.State);
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task Receiving_with_a_cancelled_token_throws_and_the_message_stays_for_the_next_read(Transport transport)
    {
        await using var client = await Clients.ConnectAsync(Server, transport);
        var queue = Unique.Queue("receive");
        await using var subscription = await client.SubscribeAsync(queue);

        using var soon = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await subscription.ReceiveAsync(soon.Token));

        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        await client.SendAsync(queue, "kept", Clients.Receipted);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await subscription.ReceiveAsync(cancelled.Token));
        Assert.Equal("kept", (await subscription.NextAsync()).BodyText);
    }

    [Fact]
    public async Task Await_foreach_stops_when_its_token_is_cancelled()
    {
        await using var client = await Clients.ConnectAsync(Server, Transport.Tcp);
        var queue = Unique.Queue("foreach");
        await using var subscription = await client.SubscribeAsync(queue);
        await client.SendAsync(queue, "one", Clients.Receipted);
        using var cts = new CancellationTokenSource();

        var seen = new List<string>();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var message in subscription.ReadAllAsync(cts.Token))
            {
                seen.Add(message.BodyText);
                await cts.CancelAsync();
            }
        });

        Assert.Equal(["one"], seen);
    }

    [Fact]
    public async Task Waiting_for_a_receipt_can_be_cancelled()
    {
        await using var fake = new FakeStompServer(_ => "CONNECTED\nversion:1.2\n\n\0") { SendsReceipts = false };
        await using var client = await StompClient.ConnectAsync(Clients.Options(fake.Uri));
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await client.SendAsync("/queue/x", "unanswered", Clients.Receipted, cts.Token));

        Assert.Equal(StompConnectionState.Connected, client.State);
        await client.SendAsync("/queue/x", "still usable");
        await Wait.UntilAsync(() => fake.Frames.Count(f => f["command"] == "SEND") == 2, Clients.Deadline, "both SENDs at the fake");
    }

    [Fact]
    public async Task A_request_is_cancelled_rather_than_timed_out()
    {
        await using var client = await Clients.ConnectAsync(Server, Transport.Tcp);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));

        var error = await Assert.ThrowsAnyAsync<Exception>(() => client.RequestAsync(Unique.Queue("nobody"), "?"u8.ToArray(), TimeSpan.FromSeconds(30), cancellationToken: cts.Token));

        Assert.IsAssignableFrom<OperationCanceledException>(error);
    }

    [Fact]
    public async Task A_handler_is_cancelled_when_the_client_is_disposed()
    {
        var client = await Clients.ConnectAsync(Server, Transport.Tcp);
        var queue = Unique.Queue("long-handler");
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var cancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await client.SubscribeAsync(queue, async (_, ct) =>
        {
            started.SetResult();
            try
            {
                await Task.Delay(Timeout.Infinite, ct);
            }
            catch (OperationCanceledException)
            {
                cancelled.SetResult();
                throw;
            }
        });
        await client.SendAsync(queue, "work");
        await started.Task.WaitAsync(Clients.Deadline);

        await client.DisposeAsync().AsTask().WaitAsync(Clients.Deadline);

        await cancelled.Task.WaitAsync(Clients.Deadline);
    }

    [Fact]
    public async Task Operations_waiting_for_a_reconnect_can_be_cancelled()
    {
        var server = await BrokerServer.StartAsync();
        try
        {
            await using var client = await Clients.ConnectAsync(server, Transport.Tcp);
            var states = new StateRecorder(client);
            await server.StopAsync();
            await states.WaitForAsync(StompConnectionState.Connected, StompConnectionState.Reconnecting);

            using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await client.SendAsync(Unique.Queue(), "waits", Clients.Receipted, cts.Token));
            Assert.Equal(StompConnectionState.Reconnecting, client.State);
        }
        finally
        {
            await server.DisposeAsync();
        }
    }
}
