using System.Collections.Concurrent;
using Broker.Diagnostics.Status;
using Broker.Routing;

namespace Broker.Backends.InMemory;

/// <summary>
/// One node, no dependencies: topics fan out to their current subscribers, queues hold messages until a consumer
/// takes them. Messages live in memory only and are gone when the process stops.
/// </summary>
public sealed class InMemoryBackend : IMessageBackend, IBackendStatus
{
    private readonly PublishCounters _publishes = new();

    private readonly ConcurrentDictionary<string, InMemoryTopic> _topics = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, InMemoryQueue> _queues = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, InMemoryQueue> _temporaryQueues = new(StringComparer.Ordinal);

    /// <summary>Messages dropped because nobody could take them (a reply to a closed temp queue).</summary>
    public long DroppedCount => Interlocked.Read(ref _dropped);

    private long _dropped;

    /// <summary>A backend without a storage limit.</summary>
    public InMemoryBackend()
        : this(QueueStorageBudget.Unlimited)
    {
    }

    /// <summary>A backend whose queues hold at most <paramref name="budget"/> bytes in all.</summary>
    public InMemoryBackend(QueueStorageBudget budget)
    {
        ArgumentNullException.ThrowIfNull(budget);
        Budget = budget;
    }

    /// <summary>The storage budget of this backend's queues.</summary>
    public QueueStorageBudget Budget { get; }

    /// <inheritdoc/>
    public ValueTask<Task> PublishAsync(Destination destination, BrokerMessage message, CancellationToken cancellationToken)
    {
        if (destination.Kind is DestinationKind.Topic or DestinationKind.Queue or DestinationKind.ReplyQueue)
        {
            _publishes.Increment(destination.Value);
        }

        switch (destination.Kind)
        {
            case DestinationKind.Topic:
                // No subscribers, no topic: a topic message nobody listens to is gone, as in every broker.
                if (_topics.TryGetValue(destination.Name, out var topic))
                {
                    topic.Publish(message);
                }

                break;
            case DestinationKind.Queue:
                _queues.GetOrAdd(destination.Name, static (name, budget) => new InMemoryQueue(name, budget), Budget).Enqueue(message);
                break;
            case DestinationKind.ReplyQueue:
                if (_temporaryQueues.TryGetValue(destination.Name, out var temporary))
                {
                    temporary.Enqueue(message);
                }
                else
                {
                    Interlocked.Increment(ref _dropped);
                }

                break;
            default:
                throw NotServed(destination);
        }

        // Taken as soon as it is queued: nothing to wait for.
        return ValueTask.FromResult(Task.CompletedTask);
    }

    /// <inheritdoc/>
    public ValueTask<IConsumerBinding> SubscribeAsync(Destination destination, SubscriptionOptions options, IMessageConsumer consumer, CancellationToken cancellationToken)
    {
        IConsumerBinding binding = destination.Kind switch
        {
            DestinationKind.Topic => _topics.GetOrAdd(destination.Name, static _ => new InMemoryTopic()).Add(consumer),
            DestinationKind.Queue => _queues.GetOrAdd(destination.Name, static (name, budget) => new InMemoryQueue(name, budget), Budget).AddConsumer(consumer),
            DestinationKind.TempQueue => _temporaryQueues.GetOrAdd(destination.Name, name => new InMemoryQueue(name, Budget)).AddConsumer(consumer),
            _ => throw NotServed(destination),
        };
        return ValueTask.FromResult(binding);
    }

    /// <inheritdoc/>
    public ValueTask DeleteTemporaryQueueAsync(string name, CancellationToken cancellationToken)
    {
        if (_temporaryQueues.TryRemove(name, out var queue))
        {
            queue.Delete();
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>Messages waiting in a queue (for diagnostics and tests).</summary>
    public int GetQueueDepth(string name) => _queues.TryGetValue(name, out var queue) ? queue.Depth : 0;

    string IBackendStatus.Kind => "in-memory";

    string IBackendStatus.State => "up";

    long IBackendStatus.Reconnects => 0;

    PublishCounters IBackendStatus.Publishes => _publishes;

    void IBackendStatus.CollectDestinations(IDictionary<string, DestinationUsage> into)
    {
        foreach (var (name, topic) in _topics)
        {
            var subscribers = topic.SubscriberCount;
            if (subscribers > 0)
            {
                into["/topic/" + name] = new DestinationUsage(subscribers, null);
            }
        }

        Collect(_queues, "/queue/", into);
        // A temporary queue is reached as /reply-queue/NAME, which is what its senders' counts are under.
        Collect(_temporaryQueues, "/reply-queue/", into);

        static void Collect(ConcurrentDictionary<string, InMemoryQueue> queues, string prefix, IDictionary<string, DestinationUsage> into)
        {
            foreach (var (name, queue) in queues)
            {
                var (consumers, depth) = queue.Usage;
                if (consumers > 0 || depth > 0)
                {
                    into[prefix + name] = new DestinationUsage(consumers, depth);
                }
            }
        }
    }

    private static DestinationException NotServed(Destination destination) => destination.Kind switch
    {
        DestinationKind.Exchange or DestinationKind.AmqQueue =>
            new DestinationException($"destination '{destination.Value}' needs the RabbitMQ backend; the in-memory backend serves /topic/, /queue/ and /temp-queue/"),
        DestinationKind.ReplyQueue => new DestinationException($"cannot subscribe to '{destination.Value}': reply queues are for sending replies to"),
        _ => new DestinationException($"destination '{destination.Value}' is not served here"),
    };
}

/// <summary>Fan-out to the current subscribers. Publishing reads a snapshot array, so it takes no lock.</summary>
internal sealed class InMemoryTopic
{
    private readonly Lock _gate = new();
    private IMessageConsumer[] _subscribers = [];

    public int SubscriberCount => Volatile.Read(ref _subscribers).Length;

    public IConsumerBinding Add(IMessageConsumer consumer)
    {
        lock (_gate)
        {
            _subscribers = [.. _subscribers, consumer];
        }

        return new Binding(this, consumer);
    }

    public void Publish(BrokerMessage message)
    {
        foreach (var subscriber in Volatile.Read(ref _subscribers))
        {
            subscriber.TryDeliver(message, redelivered: false, settlement: null);
        }
    }

    private void Remove(IMessageConsumer consumer)
    {
        lock (_gate)
        {
            _subscribers = Array.FindAll(_subscribers, s => !ReferenceEquals(s, consumer));
        }
    }

    private sealed class Binding(InMemoryTopic topic, IMessageConsumer consumer) : IConsumerBinding
    {
        public void OnRoomAvailable()
        {
        }

        public ValueTask DisposeAsync()
        {
            topic.Remove(consumer);
            return ValueTask.CompletedTask;
        }
    }
}

/// <summary>
/// Competing consumers: each message goes to one consumer, round-robin among those with room; messages wait while
/// none has room. Nacked and abandoned messages go back to the head, marked redelivered, in their original order.
/// </summary>
internal sealed class InMemoryQueue(string name, QueueStorageBudget budget)
{
    private bool _deleted;
    private readonly Lock _gate = new();
    private readonly RingDeque<Entry> _ready = new();
    private readonly List<IMessageConsumer> _consumers = [];
    private int _next;
    private long _sequence;

    public string Name { get; } = name;

    public int Depth
    {
        get
        {
            lock (_gate)
            {
                return _ready.Count;
            }
        }
    }

    /// <summary>Consumers and waiting messages, read together.</summary>
    public (int Consumers, int Depth) Usage
    {
        get
        {
            lock (_gate)
            {
                return (_consumers.Count, _ready.Count);
            }
        }
    }

    /// <exception cref="Routing.BackendUnavailableException">The queues' storage budget is spent.</exception>
    public void Enqueue(BrokerMessage message)
    {
        if (!budget.TryReserve(message.Size))
        {
            throw new Routing.BackendUnavailableException(
                $"queue storage full: the broker holds at most {budget.MaxBytes} bytes of queued messages (Broker:Limits:MaxQueuedBytes); consume some first");
        }

        lock (_gate)
        {
            _ready.AddLast(new Entry(this, message, ++_sequence));
            Dispatch();
        }
    }

    public IConsumerBinding AddConsumer(IMessageConsumer consumer)
    {
        lock (_gate)
        {
            _consumers.Add(consumer);
            Dispatch();
        }

        return new Binding(this, consumer);
    }

    /// <summary>A deleted temp queue gives its messages' storage back, now and when in-flight ones come back.</summary>
    public void Delete()
    {
        lock (_gate)
        {
            _deleted = true;
            while (_ready.Count > 0)
            {
                budget.Release(_ready.RemoveFirst().Message.Size);
            }
        }
    }

    private void Release(Entry entry) => budget.Release(entry.Message.Size);

    private void Requeue(Entry entry)
    {
        lock (_gate)
        {
            if (_deleted)
            {
                Release(entry);
                return;
            }

            entry.Redelivered = true;
            // Ahead of every message that came after it: messages given back one by one (a consumer that leaves with
            // several unacknowledged) keep their order instead of being reversed by repeated inserts at the head.
            var position = 0;
            while (position < _ready.Count && _ready[position].Sequence < entry.Sequence)
            {
                position++;
            }

            _ready.Insert(position, entry);
            Dispatch();
        }
    }

    private void RemoveConsumer(IMessageConsumer consumer)
    {
        lock (_gate)
        {
            _consumers.Remove(consumer);
        }
    }

    private void DispatchUnderLock()
    {
        lock (_gate)
        {
            Dispatch();
        }
    }

    // Caller holds _gate. Consumers only enqueue to their own outbound buffer, so holding the lock is brief.
    private void Dispatch()
    {
        while (_ready.Count > 0 && _consumers.Count > 0)
        {
            var entry = _ready.PeekFirst();
            var delivered = false;
            for (var tried = 0; tried < _consumers.Count && !delivered; tried++)
            {
                var index = (_next + tried) % _consumers.Count;
                if (_consumers[index].TryDeliver(entry.Message, entry.Redelivered, entry))
                {
                    _next = index + 1;
                    delivered = true;
                }
            }

            if (!delivered)
            {
                return;
            }

            _ready.RemoveFirst();
        }
    }

    private sealed class Entry(InMemoryQueue queue, BrokerMessage message, long sequence) : IDeliverySettlement
    {
        public BrokerMessage Message { get; } = message;

        /// <summary>Arrival order in the queue.</summary>
        public long Sequence { get; } = sequence;

        public bool Redelivered { get; set; }

        public void Ack() => queue.Release(this);

        public void Nack(bool requeue)
        {
            if (requeue)
            {
                queue.Requeue(this);
            }
            else
            {
                queue.Release(this);
            }
        }
    }

    private sealed class Binding(InMemoryQueue queue, IMessageConsumer consumer) : IConsumerBinding
    {
        public void OnRoomAvailable() => queue.DispatchUnderLock();

        public ValueTask DisposeAsync()
        {
            queue.RemoveConsumer(consumer);
            return ValueTask.CompletedTask;
        }
    }
}
