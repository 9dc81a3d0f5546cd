"""Compatibility name: the comparison's clips live in `adamask.compare.data`."""

from adamask.compare.data import (  # noqa: F401
    DIRECTIONS,
    MEAN,
    STD,
    VIDEO_EXTENSIONS,
    ClipSet,
    SyntheticDigitClips,
    VideoReadError,
    __all__,
    digit_sprites,
    find_videos,
    load_video_clips,
    motion_energy,
    normalize_video,
    photo_background,
    read_video,
    render_clip,
    token_ground_truth,
)
