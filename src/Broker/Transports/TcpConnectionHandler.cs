using System.Net;
using Broker.Sessions;
using Broker.Stomp;
using Microsoft.AspNetCore.Connections;

namespace Broker.Transports;

/// <summary>Kestrel hands each TCP connection of the STOMP listener to this handler.</summary>
internal sealed class TcpConnectionHandler(SessionContext context, ILoggerFactory loggers) : ConnectionHandler
{
    private readonly ILogger _logger = loggers.CreateLogger("Broker.Tcp");

    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        var address = (connection.RemoteEndPoint as IPEndPoint)?.Address;
        if (!context.Registry.TryAcquireConnection(address, context.Options.Limits, out var reason))
        {
            // Over a connection limit: an ERROR saying so, then close, before any session exists.
            context.Metrics.ConnectionsRefused.Add(1, new KeyValuePair<string, object?>("reason", "limit"));
            Diagnostics.BrokerLog.ConnectionRefused(_logger, connection.RemoteEndPoint?.ToString() ?? "unknown", reason);
            var output = connection.Transport.Output;
            StompWriter.WriteCommand(output, StompCommand.Error);
            StompWriter.WriteHeader(output, StompCommand.Error, StompVersion.V1_2, "message", reason);
            StompWriter.WriteBody(output, StompCommand.Error, System.Text.Encoding.UTF8.GetBytes(reason));
            await output.FlushAsync();
            await output.CompleteAsync();
            return;
        }

        try
        {
            using var session = new StompSession(new TcpTransport(connection), context.Options.Tcp, context, _logger);
            await session.RunAsync(connection.ConnectionClosed);
        }
        finally
        {
            context.Registry.ReleaseConnection(address);
        }
    }
}
