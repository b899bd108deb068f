//! Orbit cameras: a target on the ground, a distance, a heading and a pitch; and the presets.

use glam::{Mat4, Vec3, Vec4};

use crate::{pick::Ray, scene::Scene};

/// An orbit camera.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Camera {
    /// The point looked at.
    pub target: Vec3,
    /// Distance from the target, metres.
    pub distance: f32,
    /// Compass direction the camera looks towards, radians (0: north).
    pub heading: f32,
    /// Angle above the horizon, radians.
    pub pitch: f32,
    /// Vertical field of view, radians.
    pub fov_y: f32,
}

/// The presets offered by `--camera` and the operator window.
pub const PRESETS: [&str; 3] = ["city", "cbd", "orange-isle"];

impl Camera {
    /// Where the camera is.
    pub fn eye(&self) -> Vec3 {
        // Looking towards `heading` means standing on the opposite side. North is -z.
        let back = Vec3::new(-self.heading.sin(), 0.0, self.heading.cos());
        let horizontal = back * self.pitch.cos();
        self.target + (horizontal + Vec3::Y * self.pitch.sin()) * self.distance
    }

    /// The view matrix (right-handed, y up).
    pub fn view(&self) -> Mat4 {
        let eye = self.eye();
        let f = (self.target - eye).normalize();
        let s = f.cross(Vec3::Y).normalize();
        let u = s.cross(f);
        Mat4::from_cols(
            Vec4::new(s.x, u.x, -f.x, 0.0),
            Vec4::new(s.y, u.y, -f.y, 0.0),
            Vec4::new(s.z, u.z, -f.z, 0.0),
            Vec4::new(-s.dot(eye), -u.dot(eye), f.dot(eye), 1.0),
        )
    }

    /// Reversed-Z infinite perspective: depth 1 at the near plane, 0 at infinity, so distant layers a
    /// few centimetres apart still sort correctly.
    pub fn projection(&self, aspect: f32) -> Mat4 {
        let near = (self.distance * 0.001).max(0.5);
        let f = 1.0 / (self.fov_y / 2.0).tan();
        Mat4::from_cols(
            Vec4::new(f / aspect, 0.0, 0.0, 0.0),
            Vec4::new(0.0, f, 0.0, 0.0),
            Vec4::new(0.0, 0.0, 0.0, -1.0),
            Vec4::new(0.0, 0.0, near, 0.0),
        )
    }

    /// Projection times view.
    pub fn view_proj(&self, aspect: f32) -> Mat4 {
        self.projection(aspect) * self.view()
    }

    /// The pixel (x right, y down) where a world point lands in a `width` x `height` image, if in front.
    pub fn to_pixel(&self, world: Vec3, width: u32, height: u32) -> Option<(f32, f32)> {
        let clip = self.view_proj(width as f32 / height as f32) * world.extend(1.0);
        if clip.w <= 0.0 {
            return None;
        }
        let ndc = clip.truncate() / clip.w;
        Some(((ndc.x + 1.0) / 2.0 * width as f32, (1.0 - ndc.y) / 2.0 * height as f32))
    }

    /// The ray from the eye through pixel `at` (x right, y down) of a `width` x `height` image: the
    /// inverse of [`Camera::to_pixel`], for picking.
    pub fn ray(&self, at: (f32, f32), width: u32, height: u32) -> Ray {
        let eye = self.eye();
        let f = (self.target - eye).normalize();
        let s = f.cross(Vec3::Y).normalize();
        let u = s.cross(f);
        let (w, h) = (width.max(1) as f32, height.max(1) as f32);
        let (nx, ny) = (at.0 / w * 2.0 - 1.0, 1.0 - at.1 / h * 2.0);
        let tan = (self.fov_y / 2.0).tan();
        let dir = (f + s * (nx * tan * w / h) + u * (ny * tan)).normalize();
        Ray { origin: eye, dir }
    }

    /// A camera framing a circle of `radius` around `center`, looking north at `pitch_deg`.
    pub fn framing(center: Vec3, radius: f32, pitch_deg: f32) -> Camera {
        let fov_y = 40f32.to_radians();
        let distance = radius / (fov_y / 2.0).tan() * 1.1;
        Camera { target: center, distance, heading: 0.0, pitch: pitch_deg.to_radians(), fov_y }
    }

    /// A close look at a point (e.g. one sensor): 45 degrees from the south, `distance` metres away.
    pub fn focus(point: Vec3, distance: f32) -> Camera {
        Camera { target: point, distance, heading: 0.0, pitch: 45f32.to_radians(), fov_y: 40f32.to_radians() }
    }

    /// A preset: `city` (everything), `cbd` (the tallest buildings) or a landmark key such as
    /// `orange-isle`. `None` if the scene has no such place.
    pub fn preset(scene: &Scene, name: &str) -> Option<Camera> {
        match name {
            "city" => {
                let (lo, hi) = scene.bounds;
                let center = Vec3::new((lo.x + hi.x) / 2.0, 0.0, (lo.z + hi.z) / 2.0);
                // Seen at 60 degrees the city's depth shrinks: frame a little less than its half-width.
                let radius = ((hi.x - lo.x).max(hi.z - lo.z)) / 2.0 * 0.8;
                Some(Camera::framing(center, radius, 60.0))
            }
            "cbd" => scene.landmark("cbd").map(|l| Camera::framing(l.center, l.radius.max(800.0), 35.0)),
            key => scene.landmark(key).map(|l| Camera::framing(l.center, l.radius * 1.3, 45.0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_is_in_the_middle_of_the_picture_and_north_is_up() {
        let cam = Camera::framing(Vec3::new(100.0, 0.0, -50.0), 1000.0, 60.0);
        let (x, y) = cam.to_pixel(cam.target, 800, 600).unwrap();
        assert!((x - 400.0).abs() < 0.5 && (y - 300.0).abs() < 0.5, "{x} {y}");
        let (_, y_north) = cam.to_pixel(cam.target + Vec3::new(0.0, 0.0, -200.0), 800, 600).unwrap();
        assert!(y_north < 300.0, "north is up the picture: {y_north}");
        let (x_east, _) = cam.to_pixel(cam.target + Vec3::new(200.0, 0.0, 0.0), 800, 600).unwrap();
        assert!(x_east > 400.0, "east is right: {x_east}");
    }

    #[test]
    fn a_pixel_ray_passes_through_what_projects_to_that_pixel() {
        let cam = Camera { target: Vec3::new(30.0, 0.0, 70.0), distance: 900.0, heading: 0.7, pitch: 0.5, fov_y: 0.8 };
        for p in [Vec3::new(0.0, 0.0, 0.0), Vec3::new(200.0, 40.0, -100.0), Vec3::new(-150.0, 5.0, 300.0)] {
            let (x, y) = cam.to_pixel(p, 640, 360).unwrap();
            let ray = cam.ray((x, y), 640, 360);
            let t = (p - ray.origin).dot(ray.dir);
            assert!(ray.at(t).distance(p) < 0.05, "{p}: the ray misses by {}", ray.at(t).distance(p));
        }
    }
}
