using Broker.Stomp;

namespace Broker.Routing;

/// <summary>A published message: encoded once, shared by every subscriber it goes to. Immutable.</summary>
/// <param name="Destination">The destination the sender named.</param>
/// <param name="Template">The MESSAGE frame minus the per-subscriber headers.</param>
public sealed record BrokerMessage(string Destination, StompMessageTemplate Template)
{
    /// <summary>
    /// Which connection sent it: its number among the node's publishing connections (0: the broker itself). A backend
    /// that publishes over several ordered lanes keeps one origin's messages to one destination on one lane, so they
    /// stay in order, and spreads different origins over the lanes.
    /// </summary>
    public long Origin { get; init; }

    /// <summary>Bytes one delivery takes in an outbound buffer (for flow control).</summary>
    public int Size => Template.ApproximateSize;
}
