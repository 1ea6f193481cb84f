using Microsoft.Extensions.Logging;

namespace Broker.Diagnostics;

/// <summary>Source-generated log messages with stable event ids. Never log a passcode or token.</summary>
internal static partial class BrokerLog
{
    [LoggerMessage(1, LogLevel.Information, "Listening for STOMP over {Transport} on {Address}")]
    public static partial void Listening(ILogger logger, string transport, string address);

    [LoggerMessage(2, LogLevel.Information, "Broker stopping: closing {Count} connections (grace period {GracePeriod})")]
    public static partial void ShuttingDown(ILogger logger, int count, TimeSpan gracePeriod);

    [LoggerMessage(10, LogLevel.Information, "Connection {SessionId} opened over {Transport} from {Remote}")]
    public static partial void ConnectionOpened(ILogger logger, string sessionId, string transport, string remote);

    [LoggerMessage(11, LogLevel.Information, "Session {SessionId} connected over {Transport} from {Remote}: STOMP {Version}, login '{Login}', heart-beat out {OutgoingMs} ms / in {IncomingMs} ms")]
    public static partial void SessionConnected(ILogger logger, string sessionId, string transport, string remote, string version, string login, int outgoingMs, int incomingMs);

    [LoggerMessage(12, LogLevel.Information, "Connection {SessionId} over {Transport} from {Remote} closed: {Reason}")]
    public static partial void ConnectionClosed(ILogger logger, string sessionId, string transport, string remote, string reason);

    [LoggerMessage(13, LogLevel.Warning, "Session {SessionId}: sent ERROR '{Message}'")]
    public static partial void SentError(ILogger logger, string sessionId, string message);

    [LoggerMessage(14, LogLevel.Warning, "Session {SessionId} is a slow consumer: {BufferedBytes} bytes buffered, policy {Policy}")]
    public static partial void SlowConsumer(ILogger logger, string sessionId, long bufferedBytes, string policy);

    [LoggerMessage(15, LogLevel.Error, "Session {SessionId} failed")]
    public static partial void SessionFailed(ILogger logger, string sessionId, Exception exception);

    [LoggerMessage(16, LogLevel.Warning, "Connection from {Remote} refused: {Reason}")]
    public static partial void ConnectionRefused(ILogger logger, string remote, string reason);

    [LoggerMessage(20, LogLevel.Information, "WebSocket upgrade refused from {Remote}: {Reason}")]
    public static partial void UpgradeRefused(ILogger logger, string remote, string reason);

    [LoggerMessage(21, LogLevel.Warning, "WebSocket connection from {Remote} failed: {Reason} (close code {Code})")]
    public static partial void WebSocketFailed(ILogger logger, string remote, string reason, int code);

    [LoggerMessage(22, LogLevel.Information, "io_uring transport: {Rings} rings, each holding up to {Slots} connections")]
    public static partial void IoUringStarted(ILogger logger, int rings, int slots);

    [LoggerMessage(23, LogLevel.Warning, "io_uring transport: a ring's table is full ({Rings} rings); its share of new connections waits in the listen backlog for another ring or a free slot")]
    public static partial void IoUringFull(ILogger logger, int rings);

    [LoggerMessage(24, LogLevel.Error, "io_uring transport: no longer accepting on {EndPoint}: {Reason}")]
    public static partial void IoUringAcceptFailed(ILogger logger, string endPoint, string reason);
}
