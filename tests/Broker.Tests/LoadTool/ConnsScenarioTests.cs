using System.Globalization;
using Broker.Tests.Hardening;
using Broker.Tests.Infrastructure;

namespace Broker.Tests.LoadTool;

/// <summary>
/// Runs alone, after the parallel tests: the conns scenario reads this process's resident memory until it stops
/// moving, which other tests' work in the same process would keep it from doing; and the flow scenarios drive both
/// cores flat out, which would starve the timing-sensitive tests (heart-beats) running beside them.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class LoadToolRunAloneGroup
{
    public const string Name = "Load tool: run alone";
}

/// <summary>
/// stompload's conns scenario: idle connections held open against the real broker, and the broker's resident memory
/// (here this process, which hosts it) read before and after.
/// </summary>
[Collection(LoadToolRunAloneGroup.Name)]
public sealed class ConnsScenarioTests
{
    private static readonly string Pid = Environment.ProcessId.ToString(CultureInfo.InvariantCulture);

    // At most 25 connections per address: 50 fit only if the tool spreads them over 127.0.0.1 and 127.0.0.2.
    private static Task<BrokerServer> StartBrokerAsync() => BrokerServer.StartAsync("Broker:Limits:MaxConnectionsPerAddress=25");

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task Fifty_connections_over_two_source_addresses_are_all_opened_and_the_rss_is_read(Transport transport)
    {
        await using var server = await StartBrokerAsync();
        var url = transport == Transport.Tcp ? $"tcp://127.0.0.1:{server.TcpPort}" : server.WebSocketUri.ToString();

        var run = await StompLoad.RunAsync("--scenario", "conns", "--url", url, "--connections", "50", "--source-addresses", "2", "--pid", Pid);

        var r = run.Result;
        Assert.True(r.Ok, $"the run should be ok: {run}");
        Assert.Equal(0, run.ExitCode);
        Assert.Null(r.Error);
        Assert.Equal("conns", r.Scenario);
        Assert.Equal("50 idle connections", r.Case);
        Assert.Equal(50, r.ConnectionsOpened);
        Assert.Equal(50, r.Parameters.Connections);
        Assert.True(r.RssBeforeBytes > 0, $"no RSS before: {run}");
        Assert.True(r.RssAfterBytes > 0, $"no RSS after: {run}");
        Assert.Equal((r.RssAfterBytes - r.RssBeforeBytes) / 50, r.RssPerConnectionBytes);

        // The tool closed them all when it was done.
        await server.WaitForConnectionCountAsync(0);
    }

    [Fact]
    public async Task Fifty_connections_from_one_address_hit_the_per_address_limit_and_the_run_fails()
    {
        await using var server = await StartBrokerAsync();

        var run = await StompLoad.RunAsync("--scenario", "conns", "--url", $"tcp://127.0.0.1:{server.TcpPort}", "--connections", "50", "--connect-concurrency", "1");

        var r = run.Result;
        Assert.False(r.Ok, $"the run should have failed: {run}");
        Assert.Equal(1, run.ExitCode);
        Assert.Equal(25, r.ConnectionsOpened);
        Assert.NotNull(r.Error);
        Assert.Contains("connection 26 failed after 25 were open", r.Error, StringComparison.Ordinal);
        Assert.Null(r.RssBeforeBytes); // no --pid, no memory read
        await server.WaitForConnectionCountAsync(0);
    }
}
