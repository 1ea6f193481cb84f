using System.Text;
using Broker.Routing;

namespace Broker.Sessions;

/// <summary>The <c>ack</c> header of SUBSCRIBE.</summary>
internal enum AckMode : byte
{
    /// <summary>A message counts as acknowledged once sent.</summary>
    Auto,

    /// <summary>ACK is cumulative: it acknowledges that message and every earlier one of the subscription.</summary>
    Client,

    /// <summary>ACK and NACK affect only the message named.</summary>
    ClientIndividual,
}

/// <summary>One SUBSCRIBE of a session: what the backend delivers to, and the messages awaiting an ACK.</summary>
internal sealed class Subscription(StompSession session, string id, Destination destination, AckMode ackMode, int prefetch) : IMessageConsumer
{
    public string Id { get; } = id;

    public byte[] IdUtf8 { get; } = Encoding.UTF8.GetBytes(id);

    public Destination Destination { get; } = destination;

    public AckMode AckMode { get; } = ackMode;

    /// <summary>Most unacknowledged messages (client modes, queues); 0 is no limit.</summary>
    public int Prefetch { get; } = prefetch;

    public IConsumerBinding? Binding { get; set; }

    /// <summary>Set when unsubscribed; deliveries still queued for it are not sent. Guarded by the session's delivery lock.</summary>
    public bool IsClosed { get; set; }

    /// <summary>Deliveries awaiting ACK/NACK, oldest first. Guarded by the session's delivery lock.</summary>
    public LinkedList<Delivery> Unacked { get; } = new();

    public bool TryDeliver(BrokerMessage message, bool redelivered, IDeliverySettlement? settlement) =>
        session.TryDeliver(this, message, redelivered, settlement);
}

/// <summary>A message sent to a client-ack subscription and not yet acknowledged.</summary>
internal sealed class Delivery(long id, Subscription subscription, IDeliverySettlement? settlement)
{
    public long Id { get; } = id;

    public Subscription Subscription { get; } = subscription;

    /// <summary>Null for topic messages, which are never redelivered.</summary>
    public IDeliverySettlement? Settlement { get; } = settlement;

    public LinkedListNode<Delivery>? Node { get; set; }
}
