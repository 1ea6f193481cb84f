using System.Net.WebSockets;
using Broker.Tests.Infrastructure;

namespace Broker.Tests;

/// <summary>Graceful shutdown: every connected client gets ERROR "server shutting down", then the close (WebSocket 1001).</summary>
public sealed class ShutdownTests
{
    [Fact]
    public async Task Stopping_the_broker_tells_every_client_and_closes_them()
    {
        await using var server = await BrokerServer.StartAsync();
        var queue = Unique.Queue();
        await using var tcp = await server.ConnectClientAsync(Transport.Tcp);
        await using var ws = await server.ConnectClientAsync(Transport.WebSocket);
        await using var subscribed = await server.ConnectClientAsync(Transport.WebSocket);
        await subscribed.SubscribeAsync(queue, "q", "client-individual");
        await tcp.SendAsync(queue, "pending", receipt: true);
        Assert.Equal("pending", (await subscribed.ReceiveMessageAsync()).BodyText);

        await server.StopAsync();

        foreach (var client in new[] { tcp, ws, subscribed })
        {
            var error = await client.ExpectErrorAsync();
            Assert.Equal("server shutting down", error["message"]);
            Assert.Empty(await client.ExpectClosedAsync());
        }

        Assert.Equal(WebSocketCloseStatus.EndpointUnavailable, ws.CloseStatus);
        Assert.Equal(WebSocketCloseStatus.EndpointUnavailable, subscribed.CloseStatus);
    }

    [Fact]
    public async Task Shutdown_does_not_wait_for_the_grace_period_when_clients_leave()
    {
        await using var server = await BrokerServer.StartAsync("Broker:ShutdownGracePeriod=00:00:30");
        await using var tcp = await server.ConnectClientAsync(Transport.Tcp);
        await using var ws = await server.ConnectClientAsync(Transport.WebSocket);

        var clock = System.Diagnostics.Stopwatch.StartNew();
        await server.StopAsync();
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"shutdown took {clock.Elapsed}");
        Assert.Equal("server shutting down", (await tcp.ExpectErrorAsync())["message"]);
        Assert.Equal("server shutting down", (await ws.ExpectErrorAsync())["message"]);
    }
}
