namespace Broker.Backends;

/// <summary>A growable ring buffer with both ends open: queues append at the tail and requeue at the head. Not thread-safe.</summary>
internal sealed class RingDeque<T>
{
    private T[] _items = new T[16];
    private int _head;

    public int Count { get; private set; }

    public void AddLast(T item)
    {
        Grow();
        _items[(_head + Count) % _items.Length] = item;
        Count++;
    }

    public void AddFirst(T item)
    {
        Grow();
        _head = (_head - 1 + _items.Length) % _items.Length;
        _items[_head] = item;
        Count++;
    }

    /// <summary>The item <paramref name="index"/> places from the head.</summary>
    public T this[int index] => (uint)index < (uint)Count ? _items[(_head + index) % _items.Length] : throw new ArgumentOutOfRangeException(nameof(index));

    /// <summary>Inserts so that the item ends up <paramref name="index"/> places from the head (0: first, Count: last).</summary>
    public void Insert(int index, T item)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(index, Count);
        if (index == 0)
        {
            AddFirst(item);
            return;
        }

        Grow();
        for (var i = Count; i > index; i--)
        {
            _items[(_head + i) % _items.Length] = _items[(_head + i - 1) % _items.Length];
        }

        _items[(_head + index) % _items.Length] = item;
        Count++;
    }

    public T PeekFirst() => Count == 0 ? throw new InvalidOperationException("empty") : _items[_head];

    public T RemoveFirst()
    {
        var item = PeekFirst();
        _items[_head] = default!;
        _head = (_head + 1) % _items.Length;
        Count--;
        return item;
    }

    private void Grow()
    {
        if (Count < _items.Length)
        {
            return;
        }

        var bigger = new T[_items.Length * 2];
        for (var i = 0; i < Count; i++)
        {
            bigger[i] = _items[(_head + i) % _items.Length];
        }

        _items = bigger;
        _head = 0;
    }
}
