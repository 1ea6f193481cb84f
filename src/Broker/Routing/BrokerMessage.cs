using Broker.Stomp;

namespace Broker.Routing;

/// <summary>A published message: encoded once, shared by every subscriber it goes to. Immutable.</summary>
/// <param name="Destination">The destination the sender named.</param>
/// <param name="Template">The MESSAGE frame minus the per-subscriber headers.</param>
public sealed record BrokerMessage(string Destination, StompMessageTemplate Template)
{
    /// <summary>Bytes one delivery takes in an outbound buffer (for flow control).</summary>
    public int Size => Template.ApproximateSize;
}
