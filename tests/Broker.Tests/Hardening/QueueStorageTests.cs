using Broker.Stomp;
using Broker.Tests.Infrastructure;

namespace Broker.Tests.Hardening;

/// <summary>Messages waiting in in-memory queues are bounded by Broker:Limits:MaxQueuedBytes: no SEND can grow memory past it.</summary>
public sealed class QueueStorageTests
{
    [Fact]
    public async Task A_send_over_the_queue_storage_budget_gets_an_error_and_consuming_frees_the_budget()
    {
        await using var server = await BrokerServer.StartAsync("Broker:Limits:MaxQueuedBytes=1048576");
        var queue = Unique.Queue("storage");
        var body = new string('x', 100 * 1024);

        // Nobody consumes: about ten 100 KB messages fit in 1 MiB, the next is refused.
        await using var producer = await server.ConnectClientAsync();
        var accepted = 0;
        ReceivedFrame? refusal = null;
        for (var i = 0; i < 20 && refusal is null; i++)
        {
            await producer.SendFrameAsync(StompCommand.Send, [("destination", queue), ("receipt", "r" + i)], System.Text.Encoding.UTF8.GetBytes(body));
            var answer = await producer.ReceiveAsync();
            if (answer.Command == StompCommand.Receipt)
            {
                accepted++;
            }
            else
            {
                refusal = answer;
            }
        }

        Assert.InRange(accepted, 8, 10);
        Assert.NotNull(refusal);
        Assert.Equal(StompCommand.Error, refusal!.Command);
        Assert.StartsWith("queue storage full", refusal["message"], StringComparison.Ordinal);
        Assert.Equal("r" + accepted, refusal["receipt-id"]);
        await producer.ExpectClosedAsync();

        // Everything accepted is still there, and consuming it (auto ack) gives the budget back.
        await using var consumer = await server.ConnectClientAsync();
        await consumer.SubscribeAsync(queue, "s1");
        var received = await consumer.ReceiveMessagesAsync(accepted);
        Assert.All(received, m => Assert.Equal(body.Length, m.Body.Length));
        await consumer.ExpectNothingAsync();

        await using var again = await server.ConnectClientAsync();
        for (var i = 0; i < accepted; i++)
        {
            await again.SendAsync(Unique.Queue("after"), body, receipt: true);
        }
    }
}
