using Broker.Configuration;
using Broker.Diagnostics;
using Broker.Routing;
using Broker.Sessions;
using Microsoft.Extensions.Options;

namespace Broker.Transports;

/// <summary>The WebSocket endpoint (<c>/ws</c> by default): subprotocol negotiation, then a session.</summary>
internal sealed class WebSocketEndpoint(
    IOptions<BrokerOptions> options,
    IMessageBackend backend,
    SessionRegistry registry,
    ILoggerFactory loggers,
    TimeProvider time,
    IHostApplicationLifetime lifetime)
{
    /// <summary>The STOMP subprotocols in order of preference (the IANA registry's names).</summary>
    public static readonly string[] SubProtocols = ["v12.stomp", "v11.stomp", "v10.stomp"];

    private readonly ILogger _logger = loggers.CreateLogger("Broker.WebSocket");

    public async Task HandleAsync(HttpContext context)
    {
        var remote = $"{context.Connection.RemoteIpAddress}:{context.Connection.RemotePort}";
        if (!context.WebSockets.IsWebSocketRequest)
        {
            await RefuseAsync(context, remote, StatusCodes.Status400BadRequest, "This endpoint speaks STOMP over WebSocket; connect with a WebSocket client.");
            return;
        }

        if (registry.IsShuttingDown)
        {
            await RefuseAsync(context, remote, StatusCodes.Status503ServiceUnavailable, "The broker is shutting down.");
            return;
        }

        // Echo exactly one offered subprotocol, the highest STOMP version; none offered is fine; only unknown ones is not.
        var offered = context.WebSockets.WebSocketRequestedProtocols;
        string? chosen = null;
        if (offered.Count > 0)
        {
            chosen = SubProtocols.FirstOrDefault(p => offered.Contains(p, StringComparer.OrdinalIgnoreCase));
            if (chosen is null)
            {
                await RefuseAsync(
                    context, remote, StatusCodes.Status400BadRequest,
                    $"No supported WebSocket subprotocol among '{string.Join(", ", offered)}'; this broker speaks {string.Join(", ", SubProtocols)}.");
                return;
            }
        }

        var settings = options.Value.WebSocket;
        using var socket = await context.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext
        {
            SubProtocol = chosen,
            DangerousEnableCompression = settings.Compression,
            KeepAliveInterval = TimeSpan.Zero, // STOMP heart-beats keep the connection alive.
        });

        // The request ends when the session does; the server's stopping token ends the receive loop on shutdown.
        var transport = new WebSocketTransport(socket, remote, options.Value.Limits.MaxFrameBytes, settings.CompressionThresholdBytes) { SubProtocol = chosen };
        using var aborted = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, lifetime.ApplicationStopped);
        transport.StartReceiving(aborted.Token);
        var session = new StompSession(transport, settings, options.Value, backend, registry, _logger, time);
        await session.RunAsync(aborted.Token);
    }

    private async Task RefuseAsync(HttpContext context, string remote, int status, string reason)
    {
        BrokerLog.UpgradeRefused(_logger, remote, reason);
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/plain; charset=utf-8";
        await context.Response.WriteAsync(reason, context.RequestAborted);
    }
}
