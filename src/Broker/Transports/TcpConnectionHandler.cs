using System.Net;
using Broker.Sessions;
using Broker.Stomp;
using Microsoft.AspNetCore.Connections;

namespace Broker.Transports;

/// <summary>Kestrel hands each TCP connection of the STOMP listener to this handler.</summary>
internal sealed class TcpConnectionHandler(SessionContext context, ILoggerFactory loggers) : ConnectionHandler
{
    private readonly ILogger _logger = loggers.CreateLogger("Broker.Tcp");

    // Not async: the session's own task is what Kestrel waits for, so an idle connection keeps no state machine here.
    public override Task OnConnectedAsync(ConnectionContext connection)
    {
        var address = (connection.RemoteEndPoint as IPEndPoint)?.Address;
        if (!context.Registry.TryAcquireConnection(address, context.Options.Limits, out var reason))
        {
            return RefuseAsync(connection, reason);
        }

#pragma warning disable CA2000 // StompSession.RunAsync disposes the session (and gives the slot back) when the connection ends.
        var session = new StompSession(new TcpTransport(connection), context.Options.Tcp, context, _logger, address);
#pragma warning restore CA2000
        return session.RunAsync(connection.ConnectionClosed);
    }

    // Over a connection limit: an ERROR saying so, then close, before any session exists.
    private async Task RefuseAsync(ConnectionContext connection, string reason)
    {
        context.Metrics.ConnectionsRefused.Add(1, new KeyValuePair<string, object?>("reason", "limit"));
        Diagnostics.BrokerLog.ConnectionRefused(_logger, connection.RemoteEndPoint?.ToString() ?? "unknown", reason);
        var output = connection.Transport.Output;
        StompWriter.WriteCommand(output, StompCommand.Error);
        StompWriter.WriteHeader(output, StompCommand.Error, StompVersion.V1_2, "message", reason);
        StompWriter.WriteBody(output, StompCommand.Error, System.Text.Encoding.UTF8.GetBytes(reason));
        await output.FlushAsync();
        await output.CompleteAsync();
    }
}
