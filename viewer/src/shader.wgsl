// The city's pipelines: merged static meshes, instanced sensor glyphs, and screen-sized markers.
// Directional light plus ambient, in linear colour (the target is sRGB).

struct Globals {
    view_proj: mat4x4<f32>,
    // xyz: direction the light travels (normalised).
    light_dir: vec4<f32>,
    // x: ambient fraction.
    ambient: vec4<f32>,
    // xyz: the eye.
    eye: vec4<f32>,
    // x: metres a pixel covers per metre of distance; y: the fewest metres a marker unit spans.
    marker: vec4<f32>,
    // The camera's right and up, for quads that face it.
    right: vec4<f32>,
    up: vec4<f32>,
};

@group(0) @binding(0) var<uniform> g: Globals;

struct VertexIn {
    @location(0) pos: vec3<f32>,
    @location(1) normal: vec3<f32>,
    @location(2) color: vec4<f32>,
};

struct GlyphIn {
    @location(3) center: vec3<f32>,
    @location(4) size: f32,
    @location(5) color: vec4<f32>,
};

struct VertexOut {
    @builtin(position) clip: vec4<f32>,
    @location(0) color: vec4<f32>,
    @location(1) normal: vec3<f32>,
};

@vertex
fn vs_mesh(v: VertexIn) -> VertexOut {
    var out: VertexOut;
    out.clip = g.view_proj * vec4<f32>(v.pos, 1.0);
    out.color = v.color;
    out.normal = v.normal;
    return out;
}

@vertex
fn vs_glyph(v: VertexIn, i: GlyphIn) -> VertexOut {
    var out: VertexOut;
    // The unit glyph is 1 wide and 2 tall, standing on its base.
    let world = i.center + v.pos * i.size;
    out.clip = g.view_proj * vec4<f32>(world, 1.0);
    out.color = i.color;
    out.normal = v.normal;
    return out;
}

// A glyph far away, under a pixel wide: a quad facing the camera instead of the box, as large as the box's
// outline (`size` wide; its two faces in view, `2 size` tall sides and a `size` deep top, foreshortened by
// the elevation of the line of sight). The unit quad spans x -0.5..0.5 and y 0..1.
@vertex
fn vs_glyph_far(v: VertexIn, i: GlyphIn) -> VertexOut {
    var out: VertexOut;
    let middle = i.center + vec3<f32>(0.0, i.size, 0.0);
    let to_eye = normalize(g.eye.xyz - middle);
    let tall = i.size * (2.0 * length(to_eye.xz) + abs(to_eye.y));
    let world = middle + g.right.xyz * (v.pos.x * i.size) + g.up.xyz * ((v.pos.y - 0.5) * tall);
    out.clip = g.view_proj * vec4<f32>(world, 1.0);
    out.color = i.color;
    // Lit like the box's top, which is most of what is seen from above.
    out.normal = vec3<f32>(0.0, 1.0, 0.0);
    return out;
}

// Markers: `pos` is the anchor, `normal` the offset in marker units; a unit is a pixel at the anchor's
// distance, or marker.y metres when that is more, so a marker keeps its size on screen far away.
@vertex
fn vs_marker(v: VertexIn) -> VertexOut {
    var out: VertexOut;
    let unit = max(distance(v.pos, g.eye.xyz) * g.marker.x, g.marker.y);
    out.clip = g.view_proj * vec4<f32>(v.pos + v.normal * unit, 1.0);
    out.color = v.color;
    // Flat on the ground: lit like any roof.
    out.normal = vec3<f32>(0.0, 1.0, 0.0);
    return out;
}

@fragment
fn fs_lit(in: VertexOut) -> @location(0) vec4<f32> {
    let n = normalize(in.normal);
    let diffuse = max(dot(n, -g.light_dir.xyz), 0.0);
    let light = g.ambient.x + (1.0 - g.ambient.x) * diffuse;
    return vec4<f32>(in.color.rgb * light, 1.0);
}
