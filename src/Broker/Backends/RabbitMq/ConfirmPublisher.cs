using Broker.Diagnostics.Status;
using Broker.Routing;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace Broker.Backends.RabbitMq;

/// <summary>
/// One confirm-mode channel with many publishes in flight. Publishes are written in call order under a gate, each
/// remembered by its delivery tag; RabbitMQ's basic.ack / basic.nack (often "multiple", covering every tag up to
/// one) complete them in order. We track confirms ourselves rather than with the client's own tracking, which waits
/// for each confirm inside <c>BasicPublishAsync</c> and has had concurrency bugs (rabbitmq-dotnet-client #1924).
/// The channel is replaced when it or its connection closes; what was in flight on it then fails.
/// </summary>
/// <remarks>
/// The task a publish returns is the confirm itself, and it fails with the <see cref="BackendUnavailableException"/>
/// the client is to see. Nothing waits on it per message: a session looks at it only before a RECEIPT or when too
/// many are open, and overdue confirms are found by <see cref="ExpireOverdue"/>, called a few times per timeout
/// period. A wrapper with a timeout per message cost an async state machine, a timer and a thread-pool hop each.
/// </remarks>
internal sealed class ConfirmPublisher(PublishCounters counters) : IDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Lock _pendingLock = new();

    // In tag order, which is also the order of publishing. An entry settled out of order stays until it reaches the front.
    private readonly RingDeque<PendingConfirm> _pending = new();
    private IChannel? _channel;
    private IConnection? _owner;

    /// <summary>
    /// Writes the message; the task returned completes when RabbitMQ confirms it, and fails with
    /// <see cref="BackendUnavailableException"/> when RabbitMQ refuses it, the channel goes, or it is not confirmed in time.
    /// </summary>
    public async ValueTask<Task> PublishAsync(
        IConnection connection, string exchange, string routingKey, BasicProperties properties, ReadOnlyMemory<byte> body, string destination, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            var channel = await GetChannelAsync(connection, cancellationToken);
            var tag = await channel.GetNextPublishSequenceNumberAsync(cancellationToken);

            // Completed from RabbitMQ.Client's reader; whoever awaits it continues elsewhere, never on that reader.
            var confirmed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_pendingLock)
            {
                _pending.AddLast(new PendingConfirm(tag, confirmed, destination, Environment.TickCount64));
            }

            try
            {
                await channel.BasicPublishAsync(exchange, routingKey, mandatory: false, properties, body, cancellationToken);
            }
            catch (Exception ex)
            {
                confirmed.TrySetException(ex);
                throw;
            }

            return confirmed.Task;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Fails every publish written more than <paramref name="timeout"/> ago and not yet confirmed.</summary>
    public void ExpireOverdue(TimeSpan timeout)
    {
        var writtenBefore = Environment.TickCount64 - (long)timeout.TotalMilliseconds;
        lock (_pendingLock)
        {
            while (_pending.Count > 0)
            {
                var oldest = _pending.PeekFirst();
                if (!oldest.Confirmed.Task.IsCompleted)
                {
                    if (oldest.WrittenAt > writtenBefore)
                    {
                        return;
                    }

                    oldest.Confirmed.TrySetException(new BackendUnavailableException(
                        $"backend unavailable: RabbitMQ did not confirm the message within {timeout.TotalSeconds:0.#} s"));
                }

                _pending.RemoveFirst();
            }
        }
    }

    /// <summary>Fails every publish not yet confirmed: the broker is stopping.</summary>
    public void FailAllStopping() => FailAll(new BackendUnavailableException("backend unavailable: the broker is stopping"));

    public void Dispose()
    {
        _channel?.Dispose();
        FailAllStopping();
        _gate.Dispose();
    }

    private async ValueTask<IChannel> GetChannelAsync(IConnection connection, CancellationToken cancellationToken)
    {
        if (_channel is { IsOpen: true } && ReferenceEquals(_owner, connection))
        {
            return _channel;
        }

        // Whatever the old channel still owed is lost with it.
        FailAll(ConnectionLost());
        _channel?.Dispose();
        var channel = await connection.CreateChannelAsync(
            new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: false),
            cancellationToken);
        channel.BasicAcksAsync += (_, e) =>
        {
            Complete(e.DeliveryTag, e.Multiple, refused: false);
            return Task.CompletedTask;
        };
        channel.BasicNacksAsync += (_, e) =>
        {
            Complete(e.DeliveryTag, e.Multiple, refused: true);
            return Task.CompletedTask;
        };
        channel.ChannelShutdownAsync += (_, _) =>
        {
            // A channel already replaced had what it owed failed then; what is pending now belongs to its successor.
            if (ReferenceEquals(Volatile.Read(ref _channel), channel))
            {
                FailAll(ConnectionLost());
            }

            return Task.CompletedTask;
        };
        (_channel, _owner) = (channel, connection);
        return channel;
    }

    private static BackendUnavailableException ConnectionLost() =>
        new("backend unavailable: the connection to RabbitMQ was lost before the message was confirmed");

    // Confirms usually come in order, but RabbitMQ does not promise it: a single one is looked up by its tag, a
    // "multiple" one settles every tag up to and including its own.
    private void Complete(ulong tag, bool multiple, bool refused)
    {
        lock (_pendingLock)
        {
            if (multiple)
            {
                while (_pending.Count > 0 && _pending.PeekFirst().Tag <= tag)
                {
                    Settle(_pending.RemoveFirst(), refused);
                }
            }
            else if (IndexOf(tag) is var index and >= 0)
            {
                Settle(_pending[index], refused);
            }

            // Entries settled out of order leave once nothing older is open.
            while (_pending.Count > 0 && _pending.PeekFirst().Confirmed.Task.IsCompleted)
            {
                _pending.RemoveFirst();
            }
        }
    }

    private void Settle(PendingConfirm publish, bool refused)
    {
        if (refused)
        {
            publish.Confirmed.TrySetException(new BackendUnavailableException("backend unavailable: RabbitMQ refused the message"));
        }
        else if (publish.Confirmed.TrySetResult())
        {
            counters.Increment(publish.Destination);
        }
    }

    // Caller holds _pendingLock. Tags rise from head to tail.
    private int IndexOf(ulong tag)
    {
        var (low, high) = (0, _pending.Count - 1);
        while (low <= high)
        {
            var middle = low + ((high - low) / 2);
            var found = _pending[middle].Tag;
            if (found == tag)
            {
                return middle;
            }

            (low, high) = found < tag ? (middle + 1, high) : (low, middle - 1);
        }

        return -1;
    }

    private void FailAll(BackendUnavailableException failure)
    {
        lock (_pendingLock)
        {
            while (_pending.Count > 0)
            {
                _pending.RemoveFirst().Confirmed.TrySetException(failure);
            }
        }
    }

    private readonly record struct PendingConfirm(ulong Tag, TaskCompletionSource Confirmed, string Destination, long WrittenAt);
}
