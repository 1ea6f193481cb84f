using System.Net;
using Broker.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Broker.Tests.Hardening;

/// <summary>
/// A connection flood up to the limit, then a fuzz round, against one broker, measuring the process's managed memory
/// (the broker runs in it): after everything has closed it must be back within a bound of its baseline. Runs alone,
/// after the parallel tests, so other tests' allocations do not blur the measurement.
/// </summary>
[Collection(RunAloneGroup.Name)]
public sealed class FloodAndMemoryTests(ITestOutputHelper output)
{
    private const int MaxConnections = 200;
    private const int Seed = 7_340_100;
    private const long Bound = 20L * 1024 * 1024;

    [Fact]
    public async Task A_flood_up_to_the_limit_and_a_fuzz_round_leave_memory_at_its_baseline()
    {
        await using var server = await BrokerServer.StartAsync(
            [$"Broker:Limits:MaxConnections={MaxConnections}", "Broker:Limits:MaxConnectionsPerAddress=0", .. LiveFuzz.BrokerSettings]);
        using var metrics = new MetricsRecorder(server);

        // A first round warms up every path at full size: the JIT, and the socket and array pools, which keep what
        // they grew to (Kestrel's gives blocks back only after some seconds idle). Measured: later rounds then return
        // to within a megabyte of each other, so the baseline is taken after it, with nothing connected.
        await RoundAsync(server, metrics, Seed, round: 1);
        await server.AssertStillServesOthersAsync();
        await server.WaitForNoConnectionsAsync();
        var baseline = Memory.Settled();

        var (flooded, fuzzed, afterFuzz) = await RoundAsync(server, metrics, Seed + 10, round: 2);
        await server.AssertStillServesOthersAsync();
        await server.WaitForNoConnectionsAsync();
        var after = Memory.Settled();

        var report = $"baseline {Memory.Mb(baseline)}, with {MaxConnections} connections {Memory.Mb(flooded)} (client side included), "
            + $"after fuzzing {fuzzed} frames {Memory.Mb(afterFuzz)}, after closing everything {Memory.Mb(after)}; bound: baseline + {Memory.Mb(Bound)}";
        output.WriteLine(report);
        Assert.True(after <= baseline + Bound, report);
    }

    // The flood, the refused one over each transport, a message to everyone, everything closed, then a fuzz round.
    private static async Task<(long Flooded, int Fuzzed, long AfterFuzz)> RoundAsync(BrokerServer server, MetricsRecorder metrics, int seed, int round)
    {
        // All at once: 100 TCP and 60 WebSocket clients CONNECTed and subscribed, 40 that never CONNECT.
        var topic = Unique.Topic("flood");
        var clients = await Task.WhenAll(Enumerable.Range(0, 160).Select(async i =>
        {
            var client = await server.ConnectClientAsync(i < 100 ? Transport.Tcp : Transport.WebSocket);
            await client.SubscribeAsync(topic, $"s{i}");
            return client;
        }));
        var silent = await Task.WhenAll(Enumerable.Range(0, 40).Select(_ => RawSocket.ConnectAsync(server.TcpPort)));
        await server.WaitForConnectionCountAsync(MaxConnections);

        // The next one is refused, on either transport.
        using (var refused = await RawSocket.ConnectAsync(server.TcpPort))
        {
            var end = await refused.ReadUntilClosedAsync(StompTestClient.DefaultTimeout);
            Assert.NotNull(end);
            Assert.StartsWith("too many connections", Assert.Single(end.Frames)["message"], StringComparison.Ordinal);
        }

        var (webSocket, status) = await WebSockets.TryOpenAsync(server.WebSocketUri);
        webSocket.Dispose();
        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
        Assert.Equal(2 * round, metrics.Get("stompbroker.connections.refused", "reason", "limit"));

        // The broker still answers everybody: one message reaches all 160 subscribers.
        await clients[0].SendAsync(topic, "to all");
        foreach (var client in clients)
        {
            Assert.Equal("to all", (await client.ReceiveMessageAsync()).BodyText);
        }

        var flooded = GC.GetTotalMemory(forceFullCollection: true);
        await Task.WhenAll(clients.Select(c => c.DisposeAsync().AsTask()));
        foreach (var socket in silent)
        {
            socket.Dispose();
        }

        await server.WaitForNoConnectionsAsync();

        var fuzzed = 0;
        foreach (var (transport, fuzzSeed, connections) in new[] { (Transport.Tcp, seed + 1, 200), (Transport.WebSocket, seed + 2, 120) })
        {
            var stats = await LiveFuzz.RunAsync(server, transport, fuzzSeed, LiveFuzz.Generate(fuzzSeed, connections));
            fuzzed += stats.Frames;
        }

        return (flooded, fuzzed, GC.GetTotalMemory(forceFullCollection: true));
    }
}
