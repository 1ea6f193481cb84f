using Broker.Configuration;
using Broker.Routing;
using Broker.Sessions;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Options;

namespace Broker.Transports;

/// <summary>Kestrel hands each TCP connection of the STOMP listener to this handler.</summary>
internal sealed class TcpConnectionHandler(
    IOptions<BrokerOptions> options,
    IMessageBackend backend,
    SessionRegistry registry,
    ILoggerFactory loggers,
    TimeProvider time) : ConnectionHandler
{
    private readonly ILogger _logger = loggers.CreateLogger("Broker.Tcp");

    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        var session = new StompSession(new TcpTransport(connection), options.Value.Tcp, options.Value, backend, registry, _logger, time);
        await session.RunAsync(connection.ConnectionClosed);
    }
}
