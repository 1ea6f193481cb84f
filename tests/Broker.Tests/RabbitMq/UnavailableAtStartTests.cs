using System.Net;
using Broker.Stomp;
using Broker.Tests.Infrastructure;

namespace Broker.Tests.RabbitMq;

/// <summary>A node whose RabbitMQ cannot be reached (a closed port) starts anyway and says so; it never drops a SEND silently.</summary>
[Collection(RabbitMqTestGroup.Name)]
public sealed class UnavailableAtStartTests
{
    [Fact]
    public async Task A_node_starts_without_rabbitmq_reports_not_ready_and_refuses_sends_with_an_error()
    {
        await using var node = await RabbitNodes.StartUncheckedAsync($"amqp://guest:guest@127.0.0.1:{BrokerServer.FreePort()}/");
        var log = LogCapture.Attach(node);

        Assert.Equal(HttpStatusCode.OK, await node.GetHealthAsync("/health/live"));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, await node.GetHealthAsync());

        // STOMP itself works: CONNECT is answered.
        await using (var client = await node.ConnectClientAsync())
        {
            await client.SendFrameAsync(StompCommand.Send, [("destination", Unique.Queue("nowhere")), ("receipt", "r1")], "lost?"u8.ToArray());
            var error = await client.ExpectErrorThenCloseAsync("r1");
            Assert.Contains("backend unavailable", error["message"], StringComparison.Ordinal);
        }

        // Without a receipt too: an ERROR, never a silent drop.
        foreach (var destination in new[] { Unique.Topic("nowhere"), "/exchange/amq.topic/k", Unique.Queue("nowhere") })
        {
            await using var client = await node.ConnectClientAsync(Transport.WebSocket);
            await client.SendAsync(destination, "lost?");
            var error = await client.ExpectErrorThenCloseAsync();
            Assert.Contains("backend unavailable", error["message"], StringComparison.Ordinal);
        }

        // A queue subscription is accepted and waits for the link; the session stays up.
        await using (var subscriber = await node.ConnectClientAsync())
        {
            await subscriber.SubscribeAsync(Unique.Queue("later"), "later");
            await subscriber.ExpectNothingAsync(200);
            await subscriber.SendWithReceiptAsync(StompCommand.Unsubscribe, ("id", "later"));
        }

        await Wait.UntilAsync(() => log.Contains("RabbitMQ backend cannot connect"), TimeSpan.FromSeconds(10), "a log line saying RabbitMQ cannot be reached");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, await node.GetHealthAsync());
    }

    [Fact]
    public async Task A_node_with_an_invalid_rabbitmq_uri_refuses_to_start_and_names_the_setting()
    {
        var ex = await Assert.ThrowsAnyAsync<Exception>(() => RabbitNodes.StartUncheckedAsync("http://localhost:5672/"));
        Assert.Contains("Broker:RabbitMq:Uri", ex.Message, StringComparison.Ordinal);
    }
}
