using Broker.Transports;

namespace Broker.Sessions;

/// <summary>A frame the session refuses: becomes an ERROR frame (short message, explaining body), then the connection closes.</summary>
internal sealed class SessionException(string message, string details, CloseReason closeReason = CloseReason.ProtocolError) : Exception(message)
{
    public string Details { get; } = details;

    public CloseReason CloseReason { get; } = closeReason;
}
