using System.Text.Json;
using Broker.Stomp;
using Broker.Tests.Infrastructure;

namespace Broker.Tests.RabbitMq;

/// <summary>The status topic on the RabbitMQ backend: every node's snapshot reaches a page on any node.</summary>
[Collection(RabbitMqTestGroup.Name)]
public sealed class StatusAcrossNodesTests(RabbitMqServer rabbit)
{
    [Fact]
    public async Task A_status_subscriber_on_one_node_gets_the_snapshots_of_every_node()
    {
        await using var nodes = await RabbitNodes.StartGroupAsync(rabbit, 2);
        await using var client = await nodes[0].ConnectClientAsync(Transport.WebSocket);
        await client.SubscribeAsync("/topic/stompbroker.status", "status");

        var expected = new[] { Status.StatusTests.NodeId(nodes[0]), Status.StatusTests.NodeId(nodes[1]) };
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (seen.Count < expected.Length && DateTime.UtcNow < deadline)
        {
            var message = await client.ReceiveAsync(TimeSpan.FromSeconds(5));
            Assert.Equal(StompCommand.Message, message.Command);
            using var json = JsonDocument.Parse(message.Body);
            var backend = json.RootElement.GetProperty("backends")[0];
            Assert.Equal("rabbitmq", backend.GetProperty("kind").GetString());
            Assert.Equal("connected", backend.GetProperty("state").GetString());
            Assert.Equal(json.RootElement.GetProperty("node").GetString(), message["stompbroker-node"]);
            seen.Add(json.RootElement.GetProperty("node").GetString()!);
        }

        Assert.Equal(expected.Order(StringComparer.Ordinal), seen.Order(StringComparer.Ordinal));
    }
}
