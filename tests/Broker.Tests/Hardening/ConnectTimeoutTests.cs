using System.Net.WebSockets;
using Broker.Tests.Infrastructure;

namespace Broker.Tests.Hardening;

/// <summary>CONNECT must arrive within Broker:Limits:ConnectTimeout (1 s here) or the connection is closed.</summary>
public sealed class ConnectTimeoutTests
{
    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task A_client_that_never_sends_CONNECT_gets_an_error_and_is_closed_and_a_prompt_one_carries_on(Transport transport)
    {
        await using var server = await BrokerServer.StartAsync("Broker:Limits:ConnectTimeout=00:00:01");
        using var metrics = new MetricsRecorder(server);

        // The prompt client's deadline was set before the silent one's, so by the time the silent one is refused the
        // prompt one's has passed too: it must have been disarmed by its CONNECT.
        await using var prompt = await server.ConnectClientAsync(transport);
        await using var silent = await server.OpenAsync(transport);

        var error = await silent.ExpectErrorThenCloseAsync();
        Assert.Equal("no CONNECT frame in time", error["message"]);
        Assert.Contains("within 1 s", error.BodyText, StringComparison.Ordinal);
        if (transport == Transport.WebSocket)
        {
            Assert.Equal(WebSocketCloseStatus.PolicyViolation, silent.CloseStatus);
        }

        await prompt.AssertAliveAsync();
        Assert.Equal(1, metrics.Breaches("connect-timeout"));
        await server.AssertStillServesOthersAsync();
        await prompt.DisposeAsync();
        await server.WaitForNoConnectionsAsync();
    }

    [Fact]
    public async Task Sending_bytes_without_completing_CONNECT_does_not_extend_the_deadline()
    {
        await using var server = await BrokerServer.StartAsync("Broker:Limits:ConnectTimeout=00:00:01");
        await using var client = await server.OpenAsync(Transport.Tcp);

        // Heart-beat EOLs are valid before CONNECT but are not a CONNECT: keep sending them, faster than the deadline.
        using var stop = new CancellationTokenSource();
        var beats = Task.Run(async () =>
        {
            try
            {
                while (!stop.IsCancellationRequested)
                {
                    await client.SendRawAsync("\n", stop.Token);
                    await Task.Delay(100, stop.Token);
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or IOException or System.Net.Sockets.SocketException)
            {
            }
        });

        var error = await client.ExpectErrorThenCloseAsync();
        await stop.CancelAsync();
        await beats;
        Assert.Equal("no CONNECT frame in time", error["message"]);
    }
}
