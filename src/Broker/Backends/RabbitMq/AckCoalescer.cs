using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace Broker.Backends.RabbitMq;

/// <summary>
/// The acknowledgements of one consumer channel, sent in batches: when every delivery up to tag T is settled, one
/// <c>basic.ack(T, multiple)</c> covers them all, instead of a frame (and work in RabbitMQ) per message. A delivery
/// settled out of order (client acknowledgement) is acknowledged on its own in the same batch, so RabbitMQ's prefetch
/// window never waits on one held message. A nack goes out at once, and only once it is written can a later
/// multiple ack pass over its tag, so an ack never swallows a nack.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "The semaphore's wait handle is never created, so there is nothing to dispose; a flush may still run after the channel closes.")]
internal sealed class AckCoalescer(RabbitMqBackend backend, IChannel channel)
{
    private readonly Lock _gate = new();
    private readonly SemaphoreSlim _flushing = new(1, 1);
    private readonly HashSet<ulong> _settledUnsent = [];
    private readonly HashSet<ulong> _sentAboveFloor = [];
    private ulong _floor; // every tag up to here is acknowledged (or covered by a multiple ack being sent)
    private ulong _ackUpTo; // the highest tag at or below the floor that no frame has acknowledged yet
    private ulong _floorSent;
    private bool _flushScheduled;

    public IChannel Channel => channel;

    public void Ack(ulong tag)
    {
        lock (_gate)
        {
            _settledUnsent.Add(tag);
            if (_flushScheduled)
            {
                return;
            }

            _flushScheduled = true;
        }

        // One flush per burst: the acks of everything settled meanwhile ride along.
        ThreadPool.UnsafeQueueUserWorkItem(static self => _ = self.FlushAsync(), this, preferLocal: false);
    }

    public void Nack(ulong tag, bool requeue) => _ = NackAsync(tag, requeue);

    private async Task NackAsync(ulong tag, bool requeue)
    {
        try
        {
            if (channel.IsOpen)
            {
                await channel.BasicNackAsync(tag, multiple: false, requeue);
            }
        }
        catch (Exception ex) when (ex is AlreadyClosedException or OperationInterruptedException or IOException or ObjectDisposedException)
        {
            RabbitMqBackend.LogSettleFailed(backend.Logger, ex.Message);
        }

        lock (_gate)
        {
            _sentAboveFloor.Add(tag);
            AdvanceFloor();
        }
    }

    /// <summary>Sends every ack settled so far; before the channel closes, so an acknowledged message is not requeued.</summary>
    public async Task FlushAsync()
    {
        // One flush at a time: a single ack must be written before a multiple ack that covers its tag.
        await _flushing.WaitAsync();
        try
        {
            await FlushPendingAsync();
        }
        finally
        {
            _flushing.Release();
        }
    }

    // Loops while acks keep coming.
    private async Task FlushPendingAsync()
    {
        while (true)
        {
            ulong multipleUpTo;
            ulong[] singles;
            lock (_gate)
            {
                AdvanceFloor();
                multipleUpTo = _ackUpTo > _floorSent ? _ackUpTo : 0;
                _floorSent = _ackUpTo;
                singles = _settledUnsent.Count == 0 ? [] : [.. _settledUnsent];
                foreach (var tag in singles)
                {
                    _sentAboveFloor.Add(tag);
                }

                _settledUnsent.Clear();
                if (multipleUpTo == 0 && singles.Length == 0)
                {
                    _flushScheduled = false;
                    return;
                }
            }

            try
            {
                if (!channel.IsOpen)
                {
                    continue; // RabbitMQ requeued everything unacknowledged when the channel closed
                }

                if (multipleUpTo > 0)
                {
                    await channel.BasicAckAsync(multipleUpTo, multiple: true);
                }

                foreach (var tag in singles)
                {
                    await channel.BasicAckAsync(tag, multiple: false);
                }
            }
            catch (Exception ex) when (ex is AlreadyClosedException or OperationInterruptedException or IOException or ObjectDisposedException)
            {
                RabbitMqBackend.LogSettleFailed(backend.Logger, ex.Message);
            }
        }
    }

    // Caller holds _gate. Moves the floor over every tag right above it that is settled.
    private void AdvanceFloor()
    {
        while (true)
        {
            if (_settledUnsent.Remove(_floor + 1))
            {
                _ackUpTo = ++_floor;
            }
            else if (_sentAboveFloor.Remove(_floor + 1))
            {
                _floor++;
            }
            else
            {
                break;
            }
        }
    }
}
