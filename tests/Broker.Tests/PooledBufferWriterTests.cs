using Broker.Transports;

namespace Broker.Tests;

/// <summary>The WebSocket transport's output buffer: rented while frames are written, given back after each flush.</summary>
public sealed class PooledBufferWriterTests
{
    [Fact]
    public void It_rents_on_the_first_write_and_gives_the_buffer_back_on_reset()
    {
        var writer = new PooledBufferWriter(1024);
        Assert.False(writer.HoldsBuffer);
        Assert.True(writer.WrittenMemory.IsEmpty);

        "hello"u8.CopyTo(writer.GetSpan(5));
        writer.Advance(5);
        Assert.True(writer.HoldsBuffer);
        Assert.Equal("hello"u8.ToArray(), writer.WrittenMemory.ToArray());

        writer.Reset();
        Assert.False(writer.HoldsBuffer);
        Assert.Equal(0, writer.WrittenCount);
        Assert.True(writer.WrittenMemory.IsEmpty);
    }

    [Fact]
    public void Growing_keeps_what_was_written()
    {
        var writer = new PooledBufferWriter(16);
        var expected = new List<byte>();
        for (var i = 0; i < 100; i++)
        {
            var chunk = Enumerable.Range(0, 97).Select(b => (byte)(b + i)).ToArray();
            chunk.CopyTo(writer.GetMemory(chunk.Length));
            writer.Advance(chunk.Length);
            expected.AddRange(chunk);
        }

        Assert.Equal(expected.ToArray(), writer.WrittenMemory.ToArray());
        writer.Reset();

        // The next rent starts at the size the buffer grew to, so a burst does not grow and copy again.
        writer.GetSpan();
        Assert.True(writer.GetSpan().Length >= expected.Count);
    }

    [Fact]
    public void Advancing_past_the_buffer_is_refused()
    {
        var writer = new PooledBufferWriter(16);
        Assert.Throws<InvalidOperationException>(() => writer.Advance(1));
        var length = writer.GetSpan(16).Length;
        Assert.Throws<InvalidOperationException>(() => writer.Advance(length + 1));
    }
}
