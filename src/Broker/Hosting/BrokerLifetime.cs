using Broker.Configuration;
using Broker.Diagnostics;
using Broker.Sessions;
using Microsoft.Extensions.Options;

namespace Broker.Hosting;

/// <summary>Logs where the broker listens once it has started, and closes every connection gracefully when it stops.</summary>
internal sealed class BrokerLifetime(IOptions<BrokerOptions> options, SessionRegistry registry, ILogger<BrokerLifetime> logger) : IHostedLifecycleService
{
    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken)
    {
        var o = options.Value;
        if (o.Tcp.Port != 0)
        {
            BrokerLog.Listening(logger, "TCP", $"stomp://{o.BindAddress}:{o.Tcp.Port}");
        }

        if (o.WebSocket.Port != 0)
        {
            BrokerLog.Listening(logger, "WebSocket", $"ws://{o.BindAddress}:{o.WebSocket.Port}{o.WebSocket.Path}");
        }

        return Task.CompletedTask;
    }

    // Runs before the server stops: clients get ERROR "server shutting down" and a 1001 close while Kestrel still serves.
    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        BrokerLog.ShuttingDown(logger, registry.Count, options.Value.ShutdownGracePeriod);
        await registry.ShutdownAsync(options.Value.ShutdownGracePeriod);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
