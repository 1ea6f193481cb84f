using Broker.Load.Sink;
using Broker.Tests.Infrastructure;

namespace Broker.Tests.LoadTool;

/// <summary>
/// stompload's sink server (CONNECT and receipts answered, SENDs discarded), run in this process: the ceiling row of
/// the comparison with --sink, and a broker that loses everything without it, which the tool must notice.
/// </summary>
[Collection(LoadToolRunAloneGroup.Name)]
public sealed class SinkTests
{
    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task P2p_with_sink_is_ok_with_messages_sent_and_none_received(Transport transport)
    {
        await using var sink = SinkHost.Start();

        var run = await StompLoad.RunAsync("--scenario", "p2p", "--url", sink.Url(transport), "--sink", "--broker", "sink");

        var r = run.Result;
        Assert.True(r.Ok, $"the run should be ok: {run}");
        Assert.Equal(0, run.ExitCode);
        Assert.Null(r.Error);
        Assert.True(r.Sink);
        Assert.True(r.Sent > 0, $"nothing was sent: {run}");
        Assert.True(r.SentPerSecond > 0, $"no send rate: {run}");
        Assert.Equal(0, r.Received);
        Assert.Equal(0, r.Expected);
        Assert.Equal(0, r.Lost);
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task P2p_against_the_sink_without_the_sink_flag_reports_every_message_lost(Transport transport)
    {
        await using var sink = SinkHost.Start();

        var run = await StompLoad.RunAsync("--scenario", "p2p", "--url", sink.Url(transport), "--drain-timeout", "1");

        var r = run.Result;
        Assert.False(r.Ok, $"the run should have failed: {run}");
        Assert.Equal(1, run.ExitCode);
        Assert.False(r.Sink);
        Assert.True(r.Sent > 0, $"nothing was sent: {run}");
        Assert.Equal(r.Sent, r.Expected);
        Assert.Equal(0, r.Received);
        Assert.Equal(r.Sent, r.Lost);
    }

    /// <summary>The sink on free ports until disposed; disposing stops it, which must not take long.</summary>
    private sealed class SinkHost : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly int _tcpPort = BrokerServer.FreePort();
        private readonly int _webSocketPort = BrokerServer.FreePort();
        private Task _running = Task.CompletedTask;

        public static SinkHost Start()
        {
            var host = new SinkHost();
            // The listeners are bound before RunAsync first yields.
            host._running = SinkServer.RunAsync(host._tcpPort, host._webSocketPort, host._stop.Token);
            Assert.False(host._running.IsCompleted, $"the sink stopped at once: {host._running.Exception}");
            return host;
        }

        public string Url(Transport transport) => transport == Transport.Tcp
            ? $"tcp://127.0.0.1:{_tcpPort}"
            : $"ws://127.0.0.1:{_webSocketPort}/ws";

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            await _running.WaitAsync(TimeSpan.FromSeconds(10));
            _stop.Dispose();
        }
    }
}
