using Broker.Tests.Infrastructure;

namespace Broker.Tests.LoadTool;

/// <summary>
/// The load tool against brokers that get delivery wrong, are not there, or are not STOMP at all: it must say the run
/// failed and why, in its result, never count a bad run as a measurement, and never crash.
/// </summary>
[Collection(LoadToolRunAloneGroup.Name)]
public sealed class MisbehavingBrokerTests
{
    [Fact]
    public async Task A_broker_that_delivers_every_message_twice_is_caught_as_duplicating()
    {
        await using var broker = MisbehavingBroker.Start(DeliveryFault.DeliverTwice);

        var run = await StompLoad.RunAsync("--scenario", "p2p", "--url", broker.Url);

        var r = run.Result;
        Assert.False(r.Ok, $"the run should have failed: {run}");
        Assert.Equal(1, run.ExitCode);
        Assert.True(r.Sent > 0, $"nothing was sent: {run}");
        Assert.True(r.Duplicates > 0, $"no duplicates found: {run}");
        Assert.True(r.Received >= r.Sent, $"fewer deliveries than a broker delivering twice makes: {run}");
        // A second copy right after the first is not a step backwards. (Lost is not checked: the drain stops once as
        // many deliveries as messages came, copies included, so a tail still in flight may be counted as lost.)
        Assert.Equal(0, r.Reordered);
    }

    [Fact]
    public async Task A_broker_that_swaps_adjacent_messages_is_caught_as_reordering()
    {
        await using var broker = MisbehavingBroker.Start(DeliveryFault.SwapAdjacent);

        var run = await StompLoad.RunAsync("--scenario", "p2p", "--url", broker.Url);

        var r = run.Result;
        Assert.False(r.Ok, $"the run should have failed: {run}");
        Assert.Equal(1, run.ExitCode);
        Assert.True(r.Sent > 0, $"nothing was sent: {run}");
        Assert.True(r.Reordered > 0, $"no reordering found: {run}");
        Assert.Equal(r.Sent, r.Received);
        Assert.Equal(0, r.Lost);
        Assert.Equal(0, r.Duplicates);
    }

    [Theory]
    [InlineData("p2p")]
    [InlineData("conns")]
    public async Task A_port_nobody_listens_on_fails_the_run_with_an_error(string scenario)
    {
        var run = await StompLoad.RunAsync("--scenario", scenario, "--url", $"tcp://127.0.0.1:{BrokerServer.FreePort()}", "--connections", "3");

        Assert.False(run.Result.Ok, $"the run should have failed: {run}");
        Assert.Equal(1, run.ExitCode);
        Assert.False(string.IsNullOrEmpty(run.Result.Error), $"no error: {run}");
    }

    [Theory]
    [InlineData("p2p")]
    [InlineData("conns")]
    public async Task A_peer_that_does_not_speak_stomp_fails_the_run_with_an_error(string scenario)
    {
        // The broker's WebSocket port answers the CONNECT frame as HTTP.
        await using var server = await BrokerServer.StartAsync();

        var run = await StompLoad.RunAsync("--scenario", scenario, "--url", $"tcp://127.0.0.1:{server.WebSocketPort}", "--connections", "3");

        Assert.False(run.Result.Ok, $"the run should have failed: {run}");
        Assert.Equal(1, run.ExitCode);
        Assert.False(string.IsNullOrEmpty(run.Result.Error), $"no error: {run}");
    }
}
