using Broker.Routing;

namespace Broker.Sessions;

/// <summary>A SEND, ACK or NACK held inside BEGIN…COMMIT; applied in order on COMMIT, discarded on ABORT or disconnect.</summary>
internal readonly record struct TransactionAction(Destination Destination, BrokerMessage? Message, long DeliveryId, bool IsAck, bool Requeue)
{
    public static TransactionAction ForSend(Destination destination, BrokerMessage message) => new(destination, message, 0, false, false);

    public static TransactionAction ForAck(long deliveryId, bool isAck, bool requeue) => new(default, null, deliveryId, isAck, requeue);
}
