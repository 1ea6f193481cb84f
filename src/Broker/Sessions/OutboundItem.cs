using Broker.Routing;
using Broker.Transports;

namespace Broker.Sessions;

/// <summary>What a connection's writer sends next.</summary>
internal enum OutboundKind : byte
{
    /// <summary>A frame rendered ahead (CONNECTED, RECEIPT, ERROR).</summary>
    Frame,

    /// <summary>A MESSAGE for one subscription, rendered from the shared template at write time.</summary>
    Message,

    /// <summary>An EOL heart-beat.</summary>
    HeartBeat,
}

/// <summary>One entry in a connection's outbound queue; a struct so queueing a delivery allocates nothing.</summary>
internal readonly record struct OutboundItem(
    OutboundKind Kind,
    int Size,
    byte[]? Frame = null,
    BrokerMessage? Message = null,
    Subscription? Subscription = null,
    long DeliveryId = 0,
    bool Redelivered = false,
    IDeliverySettlement? Settlement = null,
    bool IsDroppable = false,
    CloseReason? CloseAfter = null)
{
    /// <summary>The end of what a closing connection sends: the writer flushes and stops after it.</summary>
    public static OutboundItem Close(CloseReason reason) => new(OutboundKind.HeartBeat, 0, CloseAfter: reason);
}
